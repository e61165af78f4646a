"""Research code outside vidtl: custom_imports, a LightningModule subclass with a parameter of
its own through checkpoints, the Python API (vidtl.load) and the example project."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose_config, tiny_train_overrides, write_csv_lists

import vidtl
from vidtl.cli.train import train
from vidtl.core.custom_imports import CustomImportError, import_custom
from vidtl.core.trusted_targets import UntrustedTargetError
from vidtl.inference.video_model import VideoInputError

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "experiments" / "own_project"
CUSTOM = ["mylab.temporal", "mylab.module"]


def test_custom_imports_finds_a_project_in_the_start_folder_and_says_what_is_missing(tmp_path):
    project = tmp_path / "proj"
    (project / "labcode_a").mkdir(parents=True)
    (project / "labcode_a" / "__init__.py").write_text("VALUE = 7\n")
    (project / "labcode_b.py").write_text("import not_installed_anywhere_xyz\n")
    assert import_custom(["labcode_a"], start_dir=project) == ["labcode_a"]
    assert sys.modules["labcode_a"].VALUE == 7
    with pytest.raises(CustomImportError, match=r"pip install -e .*'labcode_c'"):
        import_custom(["labcode_c.sub"], start_dir=project)
    # a module that imports a missing package gets that package's own error
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere_xyz"):
        import_custom(["labcode_b"], start_dir=project)


@pytest.fixture(scope="module")
def subclass_run(tiny_dataset, tmp_path_factory):
    """A tiny run of the example project (own temporal module and module subclass, CSV data),
    composed with its config folder on the search path and started from the project's folder
    (a copy outside the repository), as `vidtl-train -cd conf experiment=mylab_csv` would."""
    work = tmp_path_factory.mktemp("own_project")
    project = shutil.copytree(PROJECT, work / "project")
    train_list, val_list = write_csv_lists(tiny_dataset, work / "lists")
    patch = pytest.MonkeyPatch()
    patch.chdir(project)
    try:
        cfg = compose_config("train", tiny_train_overrides(
            work / "run", tiny_dataset, f"hydra.searchpath=[file://{project / 'conf'}]",
            "experiment=mylab_csv", f"data.train_list={train_list}",
            f"data.val_list={val_list}", "module.init_scale=3.0", "test=false",
            "logger=none", "module.mixup_alpha=0.8", "module.cutmix_alpha=1.0",
            "module.label_smoothing=0.1"))  # every module option composes with the project's
        train(cfg)
    finally:
        patch.undo()
    return work / "run", project


def test_a_checkpoint_of_a_subclass_loads_in_its_class_with_its_own_parameter(subclass_run):
    run, project = subclass_run
    checkpoint = run / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["vidtl"]["module_class"] == "mylab.module.ScaledLogitsModule"
    assert saved["vidtl"]["config"]["custom_imports"] == CUSTOM
    model = vidtl.load(checkpoint, custom_imports=CUSTOM, device="cpu")
    assert type(model.module).__name__ == "ScaledLogitsModule"
    assert type(model.module.classifier.temporal).__name__ == "MeanMaxPool"
    assert torch.equal(model.module.log_scale, saved["state_dict"]["log_scale"])
    assert abs(model.module.log_scale.item() - np.log(3.0)) < 0.1  # trained from init_scale 3


def test_loading_it_without_declaring_the_code_is_refused_with_what_to_add(subclass_run):
    run, _ = subclass_run
    with pytest.raises(UntrustedTargetError, match=r"custom_imports=\[mylab\.temporal\]"):
        vidtl.load(run / "checkpoints" / "last.ckpt")
    from mylab.module import ScaledLogitsModule  # importable now: an earlier test imported it

    with pytest.raises(TypeError, match=r"vidtl\.load"):
        ScaledLogitsModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt")


def test_predict_takes_a_path_or_uint8_frames_of_any_size(subclass_run, tiny_dataset):
    run, _ = subclass_run
    model = vidtl.load(run / "checkpoints" / "last.ckpt", custom_imports=CUSTOM, device="cpu")
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    from_path = model.predict(video, top_k=3)
    assert len(from_path.classes) == 3 and from_path.top in model.class_names
    assert from_path.probabilities == sorted(from_path.probabilities, reverse=True)
    import av

    with av.open(str(video)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (12, 48, 64, 3)
    single = model.probabilities(frames)
    batch = model.probabilities(torch.from_numpy(np.stack([frames, frames[:, :, ::-1].copy()])))
    assert single.shape == (1, len(model.class_names)) and batch.shape[0] == 2
    assert torch.allclose(batch[0], single[0], atol=1e-5)
    assert torch.allclose(single.sum(-1), torch.ones(1))
    # what probabilities computes: the clip sampled as the run evaluates, resized, centre-cropped,
    # normalised and scored by the subclass (its learned scale included)
    centres = ((np.arange(model.num_frames) + 0.5) * 12 / model.num_frames).astype(int)
    clip = torch.from_numpy(frames)[centres]  # the run samples segments: their centres
    view = model.eval_transform(clip.numpy())[None]
    expected = model.module.forward_clips(model.module.device_stage.normalize(view)).softmax(-1)
    assert torch.allclose(single, expected.detach(), atol=1e-5)
    with pytest.raises(VideoInputError, match=r"uint8 RGB frames \(T, H, W, 3\)"):
        model.predict(frames.astype(np.float32))
    flipped = model.probabilities(frames[:, :, ::-1])  # a view with negative strides
    assert torch.allclose(flipped[0], batch[1], atol=1e-5)
    for odd, message in ((frames[:0], "at least one frame"), (np.stack([frames])[:0], "empty"),
                         (frames[:, :0], "at least one frame")):
        with pytest.raises(VideoInputError, match=message):
            model.predict(odd)
    with pytest.raises(VideoInputError, match="top_k must be"):
        model.predict(frames, top_k=0)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_eval_predict_and_export_rebuild_the_subclass(subclass_run, tiny_dataset, tmp_path, fmt):
    from vidtl.cli.evaluate import evaluate
    from vidtl.cli.export import export
    from vidtl.cli.predict import predict

    run, _ = subclass_run
    checkpoint = run / "checkpoints" / "last.ckpt"
    declared = f"custom_imports=[{','.join(CUSTOM)}]"
    metrics = evaluate(compose_config("eval", [
        f"ckpt_path={checkpoint}", declared, f"paths.output_dir={tmp_path / 'eval'}",
        "subsets=[val]", "trainer.accelerator=cpu", "data.num_workers=0"]))
    assert 0.0 <= metrics["val/top1"] <= 1.0
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    (result,) = predict(compose_config("predict", [
        f"ckpt_path={checkpoint}", declared, f"input={video}", "num_workers=0",
        "progress=false", "top_k=2"]))
    model = vidtl.load(checkpoint, custom_imports=CUSTOM, device="cpu")
    assert [c for c, _ in result["topk"]] == model.predict(video, top_k=2).classes
    from vidtl.cli.extract import extract

    extract(compose_config("extract", [
        f"ckpt_path={checkpoint}", declared, f"input={video}", "num_workers=0",
        "progress=false", f"output={tmp_path / 'features.npz'}"]))
    embeddings = np.load(tmp_path / "features.npz")["embeddings"]
    assert embeddings.shape == (1, model.module.classifier.temporal.out_features)
    exported = export(compose_config("export", [
        f"ckpt_path={checkpoint}", declared, f"output={tmp_path / 'model'}", f"format={fmt}"]))
    clips = torch.randint(0, 256, (2, model.num_frames, 32, 32, 3), dtype=torch.uint8)
    expected = model.module.score_clips(clips.permute(0, 1, 4, 2, 3))  # scale included
    if fmt == "torchscript":
        logits = torch.jit.load(str(exported))(clips)
    else:
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(exported))
        logits = torch.from_numpy(session.run(None, {"clips": clips.numpy()})[0])
    assert torch.allclose(logits, expected.detach(), atol=1e-4)
    sidecar = json.loads(Path(f"{exported}.json").read_text())
    assert sidecar["input"]["layout"].startswith("B,T,H,W,C")


def test_an_unknown_own_target_names_the_custom_imports_to_add(tiny_dataset, tmp_path, capsys):
    from vidtl.cli.errors import one_line

    cfg = compose_config("train", tiny_train_overrides(
        tmp_path / "run", tiny_dataset, "model.temporal._target_=labmissing.pools.Pool",
        "logger=none"))
    with pytest.raises(Exception) as error:
        train(cfg)
    message = one_line(error.value)
    assert message is not None and "custom_imports=[labmissing.pools]" in message
    assert "model.temporal._target_" in message


def test_a_csv_run_does_not_warn_about_options_of_other_formats(tiny_dataset, tmp_path, caplog):
    from vidtl.data.annotations.index import load_index

    train_list, val_list = write_csv_lists(tiny_dataset, tmp_path)
    with caplog.at_level(logging.WARNING):
        load_index("csv", tiny_dataset, train_list=train_list, val_list=val_list, split=1)
    assert "ignores" not in caplog.text  # split belongs to ucf101/hmdb51: no typo
    with caplog.at_level(logging.WARNING):
        load_index("csv", tiny_dataset, train_list=train_list, val_list=val_list, splt=1)
    assert "ignores the options ['splt']" in caplog.text


def test_a_config_composed_in_python_names_the_run_folder_hydra_would_make():
    cfg = compose_config("train", ["run_name=nb_run"])  # no paths.output_dir= needed
    assert Path(cfg.paths.output_dir) == Path("logs") / "train" / "runs" / "nb_run"
    assert compose_config("predict", ["ckpt_path=x", "input=y"]).paths.output_dir == "."
