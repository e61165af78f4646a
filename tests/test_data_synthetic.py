import json
import re

import numpy as np
import pytest
from helpers import TINY_SPEC

from vidtl.data.annotations.index import load_index
from vidtl.data.frames.decoders import open_video
from vidtl.data.tools.synthetic import (
    CLASSES,
    MARKER,
    SyntheticVideoSpec,
    ensure_synthetic_dataset,
    motion_path,
    render_video,
)


def test_layout_is_ucf101(tiny_dataset):
    lists = tiny_dataset / "ucfTrainTestlist"
    assert (lists / "classInd.txt").read_text().splitlines()[0] == "1 MoveRight"
    train = (lists / "trainlist01.txt").read_text().splitlines()
    test = (lists / "testlist01.txt").read_text().splitlines()
    assert re.fullmatch(r"MoveRight/v_MoveRight_g\d\d_c\d\d\.avi 1", train[0])
    assert re.fullmatch(r"\w+/v_\w+_g\d\d_c\d\d\.avi", test[0])
    group = re.compile(r"_g(\d\d)_")
    train_groups = {group.search(line).group(1) for line in train}
    test_groups = {group.search(line).group(1) for line in test}
    assert train_groups and test_groups and not train_groups & test_groups
    assert len(train) + len(test) == len(CLASSES) * TINY_SPEC.groups * TINY_SPEC.clips_per_group
    index = load_index("ucf101", tiny_dataset)
    assert index.num_classes == len(CLASSES) >= 8
    assert not index.missing


def test_videos_decode(tiny_dataset):
    index = load_index("ucf101", tiny_dataset)
    reader = open_video(index.subsets["train"][0].path)
    assert len(reader) == TINY_SPEC.num_frames
    assert reader.get_frames(np.arange(3)).shape == (3, TINY_SPEC.height, TINY_SPEC.width, 3)


@pytest.mark.parametrize("forward,backward,key", [
    ("MoveRight", "MoveLeft", 0), ("RotateClockwise", "RotateCounterClockwise", 3),
    ("ZoomIn", "ZoomOut", 2),
])
def test_pairs_differ_only_in_direction(forward, backward, key):
    spec = SyntheticVideoSpec(num_frames=16)
    names = [c[0] for c in CLASSES]
    for seed in range(5):
        a = motion_path(spec, names.index(forward), np.random.default_rng(seed))
        b = motion_path(spec, names.index(backward), np.random.default_rng(seed))
        assert np.all(np.diff(a[key]) > 0) and np.all(np.diff(b[key]) < 0)
        for x, y in zip(a, b):  # the same path, played backwards
            assert np.allclose(x[::-1], y)
    assert CLASSES[names.index(forward)][2] == CLASSES[names.index(backward)][2]  # same shape


def test_deterministic_and_distinct():
    spec = SyntheticVideoSpec(num_frames=4, width=32, height=32)
    assert np.array_equal(render_video(spec, 0, 1, 1), render_video(spec, 0, 1, 1))
    assert not np.array_equal(render_video(spec, 0, 1, 1), render_video(spec, 0, 1, 2))


def test_cached_and_regenerated(tmp_path):
    spec = SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=4, width=32, height=32)
    root = ensure_synthetic_dataset(tmp_path / "syn", spec)
    marker = json.loads((root / MARKER).read_text())
    assert marker["spec"]["groups"] == 2 and "generator_version" in marker["spec"]
    assert len(marker["files"]) == 8 * 2 + 7  # the videos and the seven lists
    video = next(root.glob("MoveRight/*.avi"))
    stamp = video.stat().st_mtime_ns
    ensure_synthetic_dataset(root, spec)
    assert video.stat().st_mtime_ns == stamp  # cached
    other = SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=5, width=32, height=32)
    ensure_synthetic_dataset(root, other)
    assert len(open_video(video)) == 5  # another spec: made again
    (root / MARKER).unlink()  # incomplete
    with pytest.raises(FileExistsError, match="not a finished vidtl synthetic dataset"):
        ensure_synthetic_dataset(root, other)


def small_spec(num_frames: int = 4) -> SyntheticVideoSpec:
    return SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=num_frames, width=32,
                              height=32)


def contents(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
                  for p in folder.rglob("*"))


@pytest.mark.parametrize("intruder", ["a file of the user", "a changed video", "a link",
                                      "a marker that lists no files"])
def test_a_folder_holding_anything_vidtl_did_not_write_is_never_replaced(intruder, tmp_path):
    """Issue 23, attack 4: regenerating deletes only what the generator wrote."""
    root = ensure_synthetic_dataset(tmp_path / "syn", small_spec())
    if intruder == "a file of the user":
        (root / "MoveRight" / "my_notes.txt").write_text("precious")
    elif intruder == "a changed video":
        next(root.glob("ZoomIn/*.avi")).write_bytes(b"my own video")
    elif intruder == "a link":
        (tmp_path / "elsewhere").mkdir()
        (root / "link").symlink_to(tmp_path / "elsewhere")
    else:
        (root / MARKER).write_text(json.dumps({"generator_version": 1, "groups": 5}))
    before = contents(root)
    with pytest.raises(FileExistsError, match=str(root)):
        ensure_synthetic_dataset(root, small_spec(num_frames=5))
    assert contents(root) == before


def test_a_folder_of_other_files_is_never_generated_into(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "data.csv").write_text("x")
    with pytest.raises(FileExistsError, match="not a finished vidtl synthetic dataset"):
        ensure_synthetic_dataset(root, small_spec())
    assert [p.name for p in root.iterdir()] == ["data.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no staging folder left


def test_a_spec_asks_for_a_small_dataset_only():
    for fields, match in (({"num_frames": 5000}, "num_frames must be an integer from 1"),
                          ({"groups": 10_000}, "groups must be"),
                          ({"width": 1024, "height": 1024, "num_frames": 1000}, "MiB"),
                          ({"clips_per_group": 2.5}, "clips_per_group")):
        with pytest.raises(ValueError, match=match):
            SyntheticVideoSpec(**fields)


def test_a_folder_swapped_for_a_link_while_it_is_made_again_deletes_nothing_outside(tmp_path):
    """The second review: the files were checked, then deleted by path after generation, so a
    class folder replaced by a link in between had the link's target deleted."""
    from vidtl.data.tools.generated_folder import ensure_generated

    root = ensure_synthetic_dataset(tmp_path / "syn", small_spec())
    outside = tmp_path / "home"
    outside.mkdir()
    victims = {p.name: p.read_bytes() for p in root.glob("ZoomIn/*")}
    for name, data in victims.items():
        (outside / name).write_bytes(data)

    def generate_while_swapping(folder):
        (root / "ZoomIn").rename(tmp_path / "moved")
        (root / "ZoomIn").symlink_to(outside)
        (folder / "ZoomIn").mkdir()
        (folder / "ZoomIn" / "v_ZoomIn_g01_c01.avi").write_bytes(b"x")

    with pytest.raises(FileExistsError, match="changed while vidtl made the dataset again"):
        ensure_generated(root, MARKER, {"other": 1}, generate_while_swapping, "test",
                         re.compile(r".*"))
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == victims


def test_a_marker_cannot_claim_files_the_generator_never_names(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "thesis.tex").write_text("years of work")
    digest = __import__("hashlib").sha256(b"years of work").hexdigest()
    (root / MARKER).write_text(json.dumps({"spec": {"x": 1}, "files": {"thesis.tex": digest}}))
    with pytest.raises(FileExistsError, match="holds files vidtl did not write"):
        ensure_synthetic_dataset(root, small_spec())
    assert (root / "thesis.tex").read_text() == "years of work"
