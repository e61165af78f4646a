import numpy as np
import pytest

from vidtl.data.clips.sampling import DenseSampler, SegmentSampler, build_sampler


@pytest.mark.parametrize("length", [1, 3, 8, 9, 100, 301])
@pytest.mark.parametrize("training", [True, False])
def test_segment_indices_in_bounds_and_ordered(length, training):
    sampler = SegmentSampler(8)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = sampler(length, training, rng)
        assert idx.shape == (8,)
        assert idx.min() >= 0 and idx.max() < length
        assert np.all(np.diff(idx) >= 0)


def test_segment_takes_one_frame_per_segment():
    sampler = SegmentSampler(4)
    rng = np.random.default_rng(1)
    for _ in range(50):
        idx = sampler(40, True, rng)
        assert [i // 10 for i in idx] == [0, 1, 2, 3]


def test_segment_training_covers_each_segment():
    sampler = SegmentSampler(4)
    rng = np.random.default_rng(2)
    seen = {tuple(sampler(40, True, rng)) for _ in range(200)}
    firsts = {s[0] for s in seen}
    assert firsts == set(range(10))


def test_segment_eval_is_centred_and_deterministic():
    sampler = SegmentSampler(4)
    a = sampler(40, False, np.random.default_rng(0))
    b = sampler(40, False, np.random.default_rng(99))
    assert a.tolist() == b.tolist() == [5, 15, 25, 35]


def test_segment_short_video_repeats_frames():
    idx = SegmentSampler(8)(3, False, np.random.default_rng(0))
    assert sorted(set(idx.tolist())) == [0, 1, 2]


def test_dense_span_interval_and_centre():
    sampler = DenseSampler(4, 3)
    assert sampler.span == 10
    idx = sampler(30, False, np.random.default_rng(0))
    assert np.all(np.diff(idx) == 3)
    assert idx[0] == (30 - 10) // 2


def test_dense_training_random_start_within_bounds():
    sampler = DenseSampler(4, 3)
    rng = np.random.default_rng(0)
    starts = {int(sampler(30, True, rng)[0]) for _ in range(300)}
    assert starts == set(range(0, 21))


def test_dense_short_video_is_clamped():
    idx = DenseSampler(8, 4)(5, True, np.random.default_rng(0))
    assert idx.min() == 0 and idx.max() == 4
    assert np.all(np.diff(idx) >= 0)


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler("uniform", 8)
    with pytest.raises(ValueError):
        SegmentSampler(0)
    with pytest.raises(ValueError):
        SegmentSampler(4)(0, False, np.random.default_rng(0))
