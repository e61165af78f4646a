"""Datasets other people made, and paths the user names for outputs: a list file, an SSv2 JSON
or a dataset folder cannot read outside its root, hang, take all memory or be quoted where a
checkpoint named it; and nothing vidtl writes replaces a file it did not create."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import numpy as np
import pytest
from helpers import compose_config, make_video

from vidtl.cli.check import check
from vidtl.cli.prepare import prepare
from vidtl.core.own_files import WouldReplaceError
from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.index import load_index
from vidtl.data.tools.prepare import copy_annotations


def csv_dataset(root: Path, rows: list[str]) -> Path:
    """A dataset folder with two real videos and a train/val CSV of ``rows`` (plus a valid
    one so that the format has a class)."""
    make_video(root / "a" / "one.avi")
    make_video(root / "b" / "two.avi", seed=1)
    (root / "train.csv").write_text("a/one.avi,a\nb/two.avi,b\n" + "".join(rows))
    (root / "val.csv").write_text("a/one.avi,a\n")
    return root


@pytest.mark.parametrize("entry", ["../outside.avi", "/etc/hostname", "a/../../outside.avi"])
def test_entries_outside_the_root_are_refused(entry, tmp_path):
    """Issue 23, attack 10: lists named files outside data.root without a word."""
    make_video(tmp_path / "outside.avi")
    root = csv_dataset(tmp_path / "data", [f"{entry},a\n"])
    with pytest.raises(DatasetLayoutError, match="1 annotated videos lie outside data.root"):
        load_index("csv", root, train_list="train.csv", val_list="val.csv")
    index = load_index("csv", root, allow_outside_root=True, train_list="train.csv",
                       val_list="val.csv")
    assert len(index.subsets["train"]) == 3  # allowed: read like any other entry


def test_a_link_inside_the_root_is_inside(tmp_path):
    """Datasets link their videos in from elsewhere; what the list says is what is checked."""
    make_video(tmp_path / "store" / "clip.avi")
    root = csv_dataset(tmp_path / "data", ["linked/clip.avi,a\n"])
    (root / "linked").symlink_to(tmp_path / "store")
    index = load_index("csv", root, train_list="train.csv", val_list="val.csv")
    assert len(index.subsets["train"]) == 3


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_line_of_100_mb_is_one_line_error_without_the_memory(tmp_path):
    """Attack 10: a CSV with one 100 MB line took 1 GB and a traceback."""
    root = csv_dataset(tmp_path / "data", [])
    with open(root / "train.csv", "a") as file:
        file.write("x" * 100_000_000 + ",a\n")
    before = peak_rss_mb()
    with pytest.raises(DatasetLayoutError, match=r"train.csv:3: a line longer than 65536"):
        load_index("csv", root, train_list="train.csv", val_list="val.csv")
    assert peak_rss_mb() - before < 200


def test_a_deeply_nested_ssv2_json_is_one_line(tmp_path):
    """Attack 10: an SSv2 train.json nested 100,000 levels deep (RecursionError)."""
    root = tmp_path / "ssv2"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "labels.json").write_text(json.dumps({"Holding something": "0"}))
    (root / "annotations" / "train.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "annotations" / "validation.json").write_text("[]")
    with pytest.raises(DatasetLayoutError, match="train.json: JSON nested too deep"):
        load_index("ssv2", root)
    (root / "annotations" / "train.json").write_text(json.dumps(
        [{"id": "../../etc/passwd", "template": "Holding [something]"}]))
    with pytest.raises(DatasetLayoutError, match="is not a plain name"):
        load_index("ssv2", root)


def test_a_fifo_as_a_list_is_refused_without_blocking(tmp_path, deadline):
    root = csv_dataset(tmp_path / "data", [])
    (root / "val.csv").unlink()
    os.mkfifo(root / "val.csv")
    with pytest.raises(DatasetLayoutError, match="val.csv is a FIFO"):
        load_index("csv", root, train_list="train.csv", val_list="val.csv")


def test_annotation_copies_never_follow_a_link_out_of_the_root(tmp_path):
    """Attack 8: ``README.txt -> /etc/hostname`` became a file holding the host name."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "classes.txt").write_text("a\nb\n")
    (root / "README.txt").symlink_to("/etc/hostname")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("private")
    (root / "linked_folder").symlink_to(tmp_path / "elsewhere")
    (root / "inside_link.txt").symlink_to(root / "classes.txt")
    output = tmp_path / "out"
    assert copy_annotations(root, output) == 2
    assert sorted(p.name for p in output.rglob("*")) == ["classes.txt", "inside_link.txt"]
    assert not (output / "inside_link.txt").is_symlink()


def test_check_never_writes_over_a_file_it_did_not_write(tiny_dataset, tmp_path):
    """Attack 9: ``vidtl-check exclude_list=PATH`` replaced a video with its list."""
    video = tmp_path / "precious.avi"
    make_video(video)
    before = video.read_bytes()
    base = [f"data.root={tiny_dataset}", "data.synthetic=null", "workers=1", "progress=false"]
    with pytest.raises(WouldReplaceError, match="precious.avi exists and is not a"):
        check(compose_config("check", [*base, f"exclude_list={video}"]))
    with pytest.raises(WouldReplaceError, match="precious.avi exists and is not a"):
        check(compose_config("check", [*base, f"output={video}"]))
    assert video.read_bytes() == before
    exclusions, report = tmp_path / "exclude.txt", tmp_path / "report.json"
    for _ in range(2):  # its own files: written, then replaced
        check(compose_config("check", [*base, f"exclude_list={exclusions}", f"output={report}"]))
    assert exclusions.read_text().startswith("# vidtl-check")


def test_export_and_extract_replace_only_their_own_files(tiny_checkpoint, tiny_dataset, tmp_path):
    from vidtl.cli.export import export
    from vidtl.cli.extract import extract

    foreign = tmp_path / "mine.pt"
    foreign.write_bytes(b"my own model")
    common = [f"ckpt_path={tiny_checkpoint}"]
    with pytest.raises(WouldReplaceError, match="mine.pt exists"):
        export(compose_config("export", [*common, "format=torchscript", f"output={foreign}"]))
    # a description planted beside it does not make it vidtl's (its SHA-256 is not the file's)
    (tmp_path / "mine.pt.json").write_text(json.dumps(
        {"format": "torchscript", "class_names": [], "preprocessing_included": {},
         "sha256": "0" * 64}))
    with pytest.raises(WouldReplaceError, match="mine.pt exists"):
        export(compose_config("export", [*common, "format=torchscript", f"output={foreign}"]))
    assert foreign.read_bytes() == b"my own model"
    mine = tmp_path / "model.pt"
    for _ in range(2):
        export(compose_config("export", [*common, "format=torchscript", f"output={mine}"]))
    foreign_npz = tmp_path / "arrays.npz"
    np.savez(foreign_npz, data=np.zeros(3))
    video = next(tiny_dataset.rglob("*.avi"))
    extract_args = [*common, f"input={video}", "num_workers=0", "progress=false"]
    with pytest.raises(WouldReplaceError, match="arrays.npz exists"):
        extract(compose_config("extract", [*extract_args, f"output={foreign_npz}"]))
    assert set(np.load(foreign_npz).files) == {"data"}
    embeddings = tmp_path / "emb.npz"
    for _ in range(2):
        extract(compose_config("extract", [*extract_args, f"output={embeddings}"]))


def test_prepare_writes_only_into_its_own_folders(tiny_dataset, tmp_path):
    folder = tmp_path / "my_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    args = [f"data.root={tiny_dataset}", "data.synthetic=null", "short_side=32", "workers=1",
            "progress=false"]
    with pytest.raises(FileExistsError, match="not empty and was not prepared by vidtl"):
        prepare(compose_config("prepare", [*args, "mode=frames", f"output={folder}"]))
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    store = tmp_path / "store"
    store.mkdir()
    (store / "shards.json").write_text('{"my": "index"}')
    with pytest.raises(WouldReplaceError, match="not a vidtl shard index"):
        prepare(compose_config("prepare", [*args, "mode=shards", f"output={store}"]))
    assert (store / "shards.json").read_text() == '{"my": "index"}'


def test_a_root_reached_through_a_link_holds_its_real_paths(tmp_path):
    """A root that is a link (``/data`` -> ``/mnt/nfs``) and a list of the real paths, or the
    reverse: the same files, inside."""
    real = csv_dataset(tmp_path / "real", [])
    (real / "abs.csv").write_text(f"{real / 'a' / 'one.avi'},a\n{real / 'b' / 'two.avi'},b\n")
    (tmp_path / "link").symlink_to(real)
    index = load_index("csv", tmp_path / "link", train_list="abs.csv", val_list="val.csv")
    assert len(index.subsets["train"]) == 2
    linked = tmp_path / "link"
    (real / "through_link.csv").write_text(f"{linked / 'a' / 'one.avi'},a\n")
    index = load_index("csv", real, train_list="through_link.csv", val_list="val.csv")
    assert len(index.subsets["train"]) == 1


def test_a_list_cannot_ask_for_a_billion_classes(tmp_path):
    """A label of 99999999999 in an 18-byte list built that many class names."""
    root = csv_dataset(tmp_path / "data", [])
    (root / "train.csv").write_text("a/one.avi,99999999999\n")
    (root / "val.csv").write_text("a/one.avi,0\n")
    with pytest.raises(DatasetLayoutError, match="more than 100000 classes"):
        load_index("csv", root, train_list="train.csv", val_list="val.csv")


def test_a_kinetics_time_of_infinity_is_one_line(tmp_path):
    root = tmp_path / "k400"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\njump,abc,inf,10,train\n")
    with pytest.raises(DatasetLayoutError, match="train.csv:2: expected"):
        load_index("kinetics400", root)
