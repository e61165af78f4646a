"""Checkpoints written by an attacker: each attack of the threat model (docs/reliability.md)
through every entry point that loads a checkpoint, refused with one line, with nothing
written, no environment read, no connection opened and no memory taken."""

from __future__ import annotations

import copy
import http.server
import io
import os
import resource
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import compose_config

import vidtl
from vidtl.callbacks.run_record import RunRecord
from vidtl.cli.errors import one_line
from vidtl.core.errors import UserError
from vidtl.core.safe_files import RefusedFileError
from vidtl.core.stored_config import StoredConfigError, plain_config
from vidtl.core.tensor_files import UnreadableTensorFileError
from vidtl.core.trusted_targets import UntrustedTargetError
from vidtl.inference.checkpoint_model import load_checkpoint, load_trained_model
from vidtl.inference.rebuild_limits import RebuildLimitError

SECRET = "vidtl-test-secret-5b1f0c"


def crafted(tiny_checkpoint: Path, folder: Path, edit: Callable[[dict], None],
            name: str = "crafted.ckpt") -> Path:
    """A copy of the tiny checkpoint whose saved config ``edit`` changed."""
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["vidtl"]["config"] = copy.deepcopy(checkpoint["vidtl"]["config"])
    edit(checkpoint["vidtl"]["config"])
    path = folder / name
    torch.save(checkpoint, path)
    return path


def entry_points(checkpoint: Path, video: Path, tmp_path: Path) -> dict[str, Callable[[], object]]:
    """Every way into a checkpoint: the Python API and the commands that load one."""
    from vidtl.cli.evaluate import evaluate
    from vidtl.cli.export import export
    from vidtl.cli.extract import extract
    from vidtl.cli.predict import predict

    common = [f"ckpt_path={checkpoint}"]
    return {
        "vidtl.load": lambda: vidtl.load(checkpoint, device="cpu"),
        "vidtl-predict": lambda: predict(compose_config("predict", [
            *common, f"input={video}", "num_workers=0", "progress=false"])),
        "vidtl-eval": lambda: evaluate(compose_config("eval", [
            *common, f"paths.output_dir={tmp_path / 'eval'}", "subsets=[val]", "logger=none",
            "data.num_workers=0"])),
        "vidtl-export": lambda: export(compose_config("export", [
            *common, "format=torchscript", f"output={tmp_path / 'model.pt'}"])),
        "vidtl-extract": lambda: extract(compose_config("extract", [
            *common, f"input={video}", f"output={tmp_path / 'emb.npz'}", "num_workers=0",
            "progress=false"])),
    }


@pytest.fixture()
def listening_server():
    """An HTTP server on localhost that records every request it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_an_escaped_interpolation_is_refused_by_every_entry_point(tiny_checkpoint, tiny_dataset,
                                                                   tmp_path, connections):
    """Issue 23, attack 1: ``\\${oc.create:...}`` turned live by one resolve and built later."""
    source, victim = tmp_path / "source.txt", tmp_path / "copied.txt"
    source.write_text("attacker")
    payload = (f"\\${{oc.create:{{_target_: shutil.copyfile, _args_: [{source}, {victim}]}}}}")
    path = crafted(tiny_checkpoint, tmp_path,
                   lambda c: c["model"]["backbone"].update(pretrained_partial=payload))
    video = next(tiny_dataset.rglob("*.avi"))
    for name, run in entry_points(path, video, tmp_path).items():
        with pytest.raises(StoredConfigError) as error:
            run()
        message = str(error.value)
        assert "model.backbone.pretrained_partial" in message and str(path) in message, name
        assert one_line(error.value) == message
    assert not victim.exists() and not connections


@pytest.mark.parametrize("key", ["data.root", "model.temporal.note", "trainer.default_root_dir",
                                 "paths.log_dir"])
def test_the_environment_is_never_read(key, tiny_checkpoint, tmp_path, monkeypatch, capfd,
                                       caplog):
    """Attack 2: ``${oc.env:NAME}`` anywhere in the stored config, in any subtree."""
    monkeypatch.setenv("VIDTL_TEST_SECRET", SECRET)

    def plant(config: dict) -> None:
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = "/data/${oc.env:VIDTL_TEST_SECRET}"

    path = crafted(tiny_checkpoint, tmp_path, plant)
    with pytest.raises(StoredConfigError, match=rf"{key} holds an interpolation") as error:
        load_trained_model(path)
    seen = str(error.value) + "".join(capfd.readouterr()) + caplog.text
    assert SECRET not in seen


def test_nothing_is_fetched_from_a_checkpoint(tiny_checkpoint, tmp_path, listening_server,
                                              monkeypatch):
    """Attack 3 and its variants: a trusted builder asked to download (with a secret in the
    URL), a hub name, and a builder that downloads by default. Sockets work in this test: the
    server on localhost shows that no request left."""
    url, requests = listening_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    fetching = {"_target_": "timm.models.resnet18", "pretrained": True,
                "pretrained_cfg_overlay": {"url": f"{url}/weights.pth"}}
    attacks = {
        "timm builder told to download": (
            lambda c: c["model"]["temporal"].update(extra=fetching),
            StoredConfigError, "model.temporal.extra.pretrained"),
        "a url alone": (
            lambda c: c["model"]["temporal"].update(
                extra={"_target_": "timm.models.resnet18",
                       "pretrained_cfg_overlay": {"url": f"{url}/w.pth"}}),
            StoredConfigError, "pretrained_cfg_overlay"),
        "a hub model name": (
            lambda c: c["model"]["backbone"].update(name="hf-hub:attacker/model"),
            StoredConfigError, "names a hub or URL"),
        "a builder that downloads by default": (
            lambda c: c["model"]["temporal"].update(extra={
                "_target_": "torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn"}),
            UntrustedTargetError, "is not a class or function"),
        "a class reached through another module": (
            lambda c: c["model"]["backbone"].update(extra={
                "_target_": "vidtl.training.module.L.pytorch._graveyard._torchmetrics."
                            "torchmetrics.functional.image.lpips._LPIPS",
                "pnet_rand": True, "model_path": str(tmp_path / "somewhere")}),
            UntrustedTargetError, "is not a class or function"),
    }
    for name, (edit, kind, expected) in attacks.items():
        path = crafted(tiny_checkpoint, tmp_path, edit, f"{name.replace(' ', '_')}.ckpt")
        with pytest.raises(kind, match=expected):
            load_trained_model(path)
    assert requests == []
    assert not list((tmp_path / "torch_home").rglob("*.pth"))


def test_code_the_user_trusts_still_reads_no_cache_and_fetches_nothing(tiny_checkpoint,
                                                                       tmp_path, monkeypatch):
    """A builder the user trusts (``trusted_targets``) that loads cached weights with
    ``weights_only=False`` or downloads them: while the model is rebuilt, no file is opened,
    no folder made, no connection tried. The cache holds a pickle that would run code."""
    import torchvision

    weights = torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    marker = tmp_path / "code_ran"
    with open(cache / Path(weights.url).name, "wb") as file:
        import pickle

        pickle.dump(Touch(marker), file)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    path = crafted(tiny_checkpoint, tmp_path, lambda c: c["model"]["temporal"].update(extra={
        "_target_": "torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn"}))
    with pytest.raises(RebuildLimitError, match="tried to (open a file|make a folder)"):
        load_trained_model(path, trusted_targets=["torchvision.models.detection"])
    assert not marker.exists()
    empty = tmp_path / "empty_home"
    monkeypatch.setenv("TORCH_HOME", str(empty))
    with pytest.raises(RebuildLimitError, match="tried to make a folder") as error:
        load_trained_model(path, trusted_targets=["torchvision.models.detection"])
    assert not empty.exists()
    assert str(empty) not in str(error.value)  # a path from the environment is never shown


class Touch:
    """Unpickling this object creates a file: code that ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("bomb, expected", [
    ({"_target_": "torch.nn.LSTM", "input_size": 4096, "hidden_size": 4096, "num_layers": 200},
     "MiB of tensors"),
    ({"_target_": "timm.models.vision_transformer.VisionTransformer", "depth": 100_000,
      "embed_dim": 8, "num_heads": 1, "img_size": 16, "patch_size": 8}, "modules"),
    ({"_target_": "torch.nn.Linear", "in_features": 200_000, "out_features": 200_000},
     "MiB of tensors"),  # 160 GB in one matrix
    ({"_target_": "torchvision.models.detection.anchor_utils.AnchorGenerator",
      "_convert_": "all", "sizes": [[1.0] * 30_000], "aspect_ratios": [[1.0] * 30_000]},
     "MiB of tensors"),  # tensors that are not parameters: the product of two lists
])
def test_a_model_larger_than_its_weights_is_refused_before_memory_is_used(
        bomb, expected, tiny_checkpoint, tmp_path, connections):
    """Trusted classes with crafted sizes: 100 GB of layers, a hundred thousand blocks, one
    160 GB matrix, 14 GB of anchors that are no parameter at all."""
    path = crafted(tiny_checkpoint, tmp_path, lambda c: c["model"]["temporal"].update(bomb=bomb))
    before = peak_rss_mb()
    with pytest.raises(RebuildLimitError, match=expected) as error:
        load_trained_model(path)
    assert peak_rss_mb() - before < 500
    assert str(path) in str(error.value) and not connections


def test_a_checkpoints_tensors_cannot_lie_about_their_size(tiny_checkpoint, tmp_path):
    """A meta tensor (no bytes, but a size that raised the model's limit) and a tensor expanded
    from one element (which a resumed optimizer would copy at its full size)."""
    for name, tensor in (("meta", torch.empty(3 * 10**9, device="meta")),
                         ("expanded", torch.zeros(1).expand(6 * 10**8))):
        checkpoint = torch.load(tiny_checkpoint, weights_only=True)
        checkpoint["state_dict"]["extra"] = tensor
        path = tmp_path / f"{name}.ckpt"
        torch.save(checkpoint, path)
        with pytest.raises(UnreadableTensorFileError, match="meta|expanded view"):
            load_checkpoint(path)


def deflated(checkpoint: dict, folder: Path) -> Path:
    """``checkpoint`` saved by torch, its archive entries then deflate-compressed."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    path = folder / "bomb.ckpt"
    with zipfile.ZipFile(buffer) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry.filename))
    return path


def test_a_checkpoint_that_expands_past_its_limit_is_refused_unread(tiny_checkpoint, tmp_path):
    """Attack 5: deflate-compressed entries expand a thousandfold on ``torch.load``."""
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["state_dict"]["padding"] = torch.zeros(40 * 2**20)  # 160 MiB of zeros
    path = deflated(checkpoint, tmp_path)
    assert path.stat().st_size < 2 * 2**20  # 160 MiB in under 2 MiB
    before = peak_rss_mb()
    with pytest.raises(UnreadableTensorFileError, match="expands to 16[0-9] MiB") as error:
        load_checkpoint(path)
    assert peak_rss_mb() - before < 100
    assert "max_checkpoint_gb" in str(error.value)
    load_checkpoint(path, max_gb=1)  # the user may raise the cap for a file they trust


def test_only_plain_data_passes():
    shared = [1, 2]
    nested: list = []
    nested.append(nested)
    for bad, why in (({"a": shared, "b": shared}, "repeats a container"),
                     ({"a": nested}, "repeats a container"),
                     ({"a": torch.zeros(2)}, "holds a Tensor"),
                     ({1: "x"}, "key of type int"),
                     ({"a": 10**30}, "integer out of range"),
                     ({"a": "x" * 70_000}, "longer than"),
                     ({"k${x}": 1}, "interpolation")):
        with pytest.raises(StoredConfigError, match=why):
            plain_config(bad, "run.ckpt")
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(StoredConfigError, match="deeper than"):
        plain_config(deep, "run.ckpt")
    with pytest.raises(StoredConfigError, match="past the 100000th value"):
        plain_config({"a": list(range(200_000))}, "run.ckpt")


def test_a_self_nested_config_from_a_real_pickle_is_refused(tiny_checkpoint, tmp_path):
    """A pickle can nest a list in itself (memo references): the walk must not recurse forever."""
    def edit(config: dict) -> None:
        loop: list = []
        loop.append(loop)
        config["trainer"]["loop"] = loop

    path = crafted(tiny_checkpoint, tmp_path, edit)
    with pytest.raises(StoredConfigError, match="trainer.loop"):
        load_checkpoint(path)


def test_targets_are_trusted_only_in_their_own_subtree(tiny_checkpoint, tmp_path):
    cases = {
        "a dataset format in the model": lambda c: c["model"].update(temporal={
            "_target_": "vidtl.data.annotations.csv_list.csv_list", "_partial_": True}),
        "a module class in the data": lambda c: c["data"].update(sampler={
            "_target_": "torch.nn.Linear", "in_features": 1, "out_features": 1}),
        "a model builder in the data": lambda c: c["data"].update(backend={
            "_target_": "torchvision.models.resnet18"}),
    }
    for name, edit in cases.items():
        path = crafted(tiny_checkpoint, tmp_path, edit, f"{name.replace(' ', '_')}.ckpt")
        with pytest.raises(UntrustedTargetError, match="is not a class or function"):
            load_checkpoint(path)


def test_a_fifo_named_as_a_checkpoint_is_refused_without_blocking(tmp_path, deadline):
    fifo = tmp_path / "last.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(RefusedFileError, match="FIFO"):
        load_checkpoint(fifo)
    with pytest.raises(RefusedFileError, match="FIFO"):
        vidtl.load(fifo)


def test_a_run_whose_config_could_not_be_loaded_back_stops_at_its_start():
    """vidtl-train stores the config resolved; one that would still hold ``${`` (an escaped
    interpolation in the user's own config) is refused when the run starts."""
    with pytest.raises(StoredConfigError, match="model.note holds an interpolation"):
        RunRecord({"model": {"note": "${oc.env:HOME}"}})


def test_every_refusal_is_one_line_for_the_commands():
    for error in (StoredConfigError("a"), RebuildLimitError("b"), UntrustedTargetError("c"),
                  UnreadableTensorFileError("d"), RefusedFileError("e")):
        assert isinstance(error, UserError) and one_line(error) is not None


def test_a_checkpoints_data_is_read_never_generated_or_deleted(tiny_checkpoint, tmp_path):
    """Attack 4: ``data.root`` names a folder holding a stale synthetic-dataset marker; the
    checkpoint's synthetic spec would have regenerated (and deleted) it."""
    from vidtl.cli.evaluate import evaluate
    from vidtl.data.tools.synthetic import MARKER

    folder = tmp_path / "my_folder"
    folder.mkdir()
    (folder / "precious.txt").write_text("my notes")
    (folder / MARKER).write_text('{"generator_version": 1, "groups": 99}')
    before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())

    def point_at_folder(config: dict) -> None:
        config["data"]["root"] = str(folder)
        config["data"]["synthetic"] = {"_target_": "vidtl.data.tools.synthetic.SyntheticVideoSpec",
                                       "groups": 2, "clips_per_group": 1, "num_frames": 4}

    path = crafted(tiny_checkpoint, tmp_path, point_at_folder)
    cfg = compose_config("eval", [f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'eval'}",
                                  "logger=none", "data.num_workers=0"])
    with pytest.raises(UserError, match="classInd.txt"):  # read as UCF101: nothing there
        evaluate(cfg)
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before


def test_a_url_a_checkpoint_names_is_not_followed(tiny_checkpoint, tmp_path, connections):
    from vidtl.cli.evaluate import evaluate

    def stream_from_attacker(config: dict) -> None:
        config["data"].update(source="stream", shards="s3://attacker-bucket/store")

    path = crafted(tiny_checkpoint, tmp_path, stream_from_attacker)
    cfg = compose_config("eval", [f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'eval'}",
                                  "logger=none"])
    with pytest.raises(UserError, match=r"data.shards is a URL \(s3://...\)"):
        evaluate(cfg)
    assert not connections


def test_loader_settings_come_from_the_machine_not_the_checkpoint(tmp_path):
    from vidtl.assembly.checkpoint_data import checkpoint_data

    saved = {"root": str(tmp_path), "num_workers": 10_000, "batch_size": 1_000_000,
             "synthetic": {"_target_": "vidtl.data.tools.synthetic.SyntheticVideoSpec"}}
    data = checkpoint_data(saved, {}, "run.ckpt")
    assert data.config.num_workers == 4 and data.config.batch_size == 8
    assert data.config.synthetic is None and not data.quote_content
    mine = checkpoint_data(saved, {"root": "/mine", "num_workers": 2}, "run.ckpt")
    assert mine.config.num_workers == 2 and mine.config.synthetic is not None
    assert mine.quote_content  # every location read was named on the command line
    with pytest.raises(UserError, match="is not a folder here; give data.root"):
        checkpoint_data({**saved, "root": str(tmp_path / "gone")}, {}, "run.ckpt")



def test_eval_generates_only_in_a_folder_the_command_line_names(tmp_path):
    """data=from_checkpoint lists every data key, synthetic too: generating a dataset (which
    rewrites the folder) is refused unless data.root is given; '' clears a key."""
    from vidtl.assembly.checkpoint_data import checkpoint_data

    saved = {"root": str(tmp_path), "extra_val_lists": ["a.csv"], "device_frame_size": [8, 8]}
    spec = {"_target_": "vidtl.data.tools.synthetic.SyntheticVideoSpec", "seed": 5}
    with pytest.raises(UserError, match="data.synthetic generates.*give data.root"):
        checkpoint_data(saved, {"synthetic": spec}, "run.ckpt")
    assert checkpoint_data(saved, {"synthetic": spec, "root": str(tmp_path)},
                           "run.ckpt").config.synthetic.seed == 5
    cleared = checkpoint_data(saved, {"extra_val_lists": "", "device_frame_size": ""},
                              "run.ckpt").config
    assert list(cleared.extra_val_lists) == [] and cleared.device_frame_size is None


def test_messages_quote_no_line_of_a_file_the_checkpoint_named(tiny_checkpoint, tiny_dataset,
                                                              tmp_path, capfd, caplog):
    """Attack 6: the checkpoint points ``data.train_list`` at any readable file."""
    from vidtl.cli.evaluate import evaluate

    secret_file = tmp_path / "credentials"
    secret_file.write_text(f"user,{SECRET},extra\n")

    def list_from_anywhere(config: dict) -> None:
        config["data"].update(format="csv", root=str(tiny_dataset), train_list=str(secret_file),
                              val_list=str(secret_file), synthetic=None)

    path = crafted(tiny_checkpoint, tmp_path, list_from_anywhere)
    cfg = compose_config("eval", [f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'eval'}",
                                  "logger=none", "data.num_workers=0"])
    with pytest.raises(UserError) as error:
        evaluate(cfg)
    message = str(error.value)
    assert "credentials:1" in message and "content withheld" in message
    assert SECRET not in message + "".join(capfd.readouterr()) + caplog.text


def test_resuming_from_a_crafted_checkpoint_deletes_and_evaluates_nothing_outside_the_run(
        tiny_checkpoint, tiny_dataset, tmp_path, caplog):
    """A ``ModelCheckpoint`` state in a checkpoint names the files the run later deletes (the
    previous best and last) and evaluates (the best): ``checkpoints/../../victim`` passed
    Lightning's own check. The loader position in it is checked too."""
    from helpers import tiny_train_overrides

    from vidtl.cli.train import train

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    folder = str((run / "checkpoints").resolve())
    evil = f"{folder}/../../victim.txt"
    states = [s for s in checkpoint["callbacks"].values() if "best_model_path" in s]
    assert states
    for state in states:
        state.update(dirpath=folder, best_model_path=evil, last_model_path=evil,
                     kth_best_model_path=evil, best_k_models={evil: torch.tensor(1.0)})
    checkpoint["VideoDataModule"] = {"train_loader": {"epoch": 0, "batches": 10**9,
                                                      "finished": False}}
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    metrics = train(compose_config("train", tiny_train_overrides(
        run, tiny_dataset, "test=false", "logger=none", f"ckpt_path={path}",
        "trainer.max_epochs=2")))
    assert victim.read_text() == "precious"
    assert "files outside this run's checkpoint folders" in caplog.text
    assert "is not one of this loader's" in caplog.text
    assert metrics["evaluated_checkpoint"] != evil and "val/top1" in metrics


@pytest.mark.parametrize("key, value", [("num_frames", 1_000_000), ("crop_size", 100_000),
                                        ("num_test_clips", 10_000), ("short_side", 10**9)])
def test_a_clip_geometry_no_machine_holds_is_refused(key, value, tiny_checkpoint, tmp_path):
    """The checkpoint's data config sets the clips of vidtl.load, -predict and -extract."""
    path = crafted(tiny_checkpoint, tmp_path, lambda c: c["data"].update({key: value}))
    before = peak_rss_mb()
    with pytest.raises(UserError, match=key) as error:
        vidtl.load(path, device="cpu")
    assert one_line(error.value) is not None and peak_rss_mb() - before < 500


def test_an_archive_that_shows_zipfile_another_directory_is_refused(tiny_checkpoint, tmp_path):
    """A second, shrunken copy of the central directory just before the end record: Python's
    ``zipfile`` reads that copy (small sizes), torch's reader the offset the record states (a
    deflated entry of 160 MiB). Found by the review of this issue."""
    import struct

    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["state_dict"]["padding"] = torch.zeros(40 * 2**20)
    raw = deflated(checkpoint, tmp_path).read_bytes()
    end = raw.rfind(b"PK\x05\x06")
    size, offset = struct.unpack("<II", raw[end + 12:end + 20])
    fake = bytearray(raw[offset:offset + size])
    position = 0
    while position < len(fake):
        name, extra, comment = struct.unpack("<HHH", fake[position + 28:position + 34])
        fake[position + 24:position + 28] = struct.pack("<I", 1)  # "expands to 1 byte"
        position += 46 + name + extra + comment
    path = tmp_path / "two_directories.ckpt"
    path.write_bytes(raw[:end] + bytes(fake) + raw[end:])
    before = peak_rss_mb()
    with pytest.raises(UnreadableTensorFileError, match="reads differently to torch"):
        load_checkpoint(path)
    assert peak_rss_mb() - before < 100


def test_a_record_that_is_not_vidtls_is_one_line(tiny_checkpoint, tmp_path):
    cases = {
        "no data config": lambda c: c["vidtl"]["config"].pop("data"),
        "control characters in a class name": lambda c: c["vidtl"]["class_names"].__setitem__(
            0, "\x1b]0;pwned\x07\x1b[2J"),
    }
    for name, edit in cases.items():
        checkpoint = torch.load(tiny_checkpoint, weights_only=True)
        edit(checkpoint)
        path = tmp_path / f"{name.replace(' ', '_')}.ckpt"
        torch.save(checkpoint, path)
        with pytest.raises(UserError, match="must come from vidtl-train|printable") as error:
            vidtl.load(path, device="cpu")
        assert one_line(error.value) is not None


def test_a_format_config_of_the_checkpoint_has_its_files_withheld(tiny_checkpoint, tiny_dataset,
                                                                  tmp_path, capfd, caplog):
    """The checkpoint names its lists inside ``data.format`` (a ``_target_`` config) while the
    command line names the root: the lists are still the checkpoint's, and stay unquoted."""
    from vidtl.cli.evaluate import evaluate

    secret_file = tmp_path / "credentials"
    secret_file.write_text(f"user,{SECRET},extra\n")

    def lists_in_the_format(config: dict) -> None:
        config["data"].update(synthetic=None, format={
            "_target_": "vidtl.data.annotations.csv_list.csv_list", "_partial_": True,
            "train_list": str(secret_file), "val_list": str(secret_file)})

    path = crafted(tiny_checkpoint, tmp_path, lists_in_the_format)
    cfg = compose_config("eval", [f"ckpt_path={path}", f"paths.output_dir={tmp_path / 'eval'}",
                                  "logger=none", "data.num_workers=0",
                                  f"data.root={tiny_dataset}"])
    with pytest.raises(UserError) as error:
        evaluate(cfg)
    assert SECRET not in str(error.value) + "".join(capfd.readouterr()) + caplog.text


def test_an_entry_with_two_zip64_sizes_is_refused(tmp_path):
    """Python's ``zipfile`` reads the last ZIP64 size of an entry, torch's reader the first: an
    entry that says 1 byte to one and 4 GiB to the other (found by the second review)."""
    import struct
    import zlib

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1, dtype=torch.uint8)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out, directory = io.BytesIO(), b""
    for info in source.infolist():
        data, name = source.read(info.filename), info.filename.encode()
        offset, size = out.tell(), 0xFFFFFFFF if "/data/" in info.filename else len(data)
        extra = (struct.pack("<HHQ", 1, 8, 0xFFFFFFFF) + struct.pack("<HHQ", 1, 8, len(data))
                 if size == 0xFFFFFFFF else b"")
        crc = zlib.crc32(data)
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 0, crc, len(data),
                              len(data), len(name), 0) + name + data)
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, crc,
                                 len(data), size, len(name), len(extra), 0, 0, 0, 0,
                                 offset) + name + extra
    start = out.tell()
    out.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(source.infolist()),
                                      len(source.infolist()), len(directory), start, 0))
    path = tmp_path / "two_sizes.pt"
    path.write_bytes(out.getvalue())
    assert sum(i.file_size for i in zipfile.ZipFile(path).infolist()) < 1000  # zipfile's view
    with pytest.raises(UnreadableTensorFileError, match="reads differently to torch"):
        load_checkpoint(path)


def test_keys_padded_into_the_state_dict_do_not_raise_the_module_limit(tiny_checkpoint,
                                                                        tmp_path):
    """100,000 empty tensors in the state dict raised the limit on modules tenfold."""
    from vidtl.inference.rebuild_limits import MAX_MODULES, limits_for

    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    empty = torch.zeros(0)
    padded = {**checkpoint["state_dict"], **{f"p{i}": empty for i in range(200_000)}}
    assert limits_for(padded)[1] == MAX_MODULES
