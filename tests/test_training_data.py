"""What ``trainer.fit`` reads, and the feature cache's key, from plain values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vidtl.assembly.data import LOADER_ONLY_KEYS
from vidtl.assembly.training_data import feature_cache_key, training_data
from vidtl.core.errors import UserError
from vidtl.training.feature_cache import FeatureCacheSettings


def test_the_cache_key_leaves_out_what_only_changes_loading():
    data = {"num_frames": 8, "crop_size": 112, **dict.fromkeys(LOADER_ONLY_KEYS, 3)}
    key = feature_cache_key({"name": "resnet18"}, data, 42)
    assert key == {"backbone": {"name": "resnet18"},
                   "data": {"num_frames": 8, "crop_size": 112}, "seed": 42}
    assert feature_cache_key({"name": "resnet18"}, {**data, "batch_size": 64}, 42) == key


def test_without_the_cache_fit_reads_the_videos(tmp_path):
    videos = SimpleNamespace(validation_sets=[("val", None), ("val/b", "b")])
    for settings in (None, FeatureCacheSettings(enabled=False)):
        assert training_data(None, videos, settings, {}, tmp_path) is videos
    with pytest.raises(UserError, match="caches one validation set"):
        training_data(None, videos, FeatureCacheSettings(enabled=True), {}, tmp_path)
