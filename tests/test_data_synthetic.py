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
    assert marker["groups"] == 2 and "generator_version" in marker
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
