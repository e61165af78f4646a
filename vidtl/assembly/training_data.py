"""What ``trainer.fit`` reads: the videos, or their cached frame features
(``feature_cache.enabled``; see :mod:`vidtl.training.feature_cache`), keyed by what they
depend on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L

from vidtl.assembly.data import LOADER_ONLY_KEYS
from vidtl.core.errors import UserError
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.stream_datamodule import ShardStreamDataModule
from vidtl.training.feature_cache import (
    CachedFeatureDataModule,
    FeatureCacheSettings,
    build_feature_cache,
)
from vidtl.training.module import VideoClassificationModule


def feature_cache_key(backbone: Any, data: Mapping[str, Any], seed: int | None
                      ) -> dict[str, Any]:
    """What cached features depend on besides the videos: the backbone's config, the data
    settings (but those that only change how clips are loaded, :data:`LOADER_ONLY_KEYS`) and
    the seed."""
    return {"backbone": backbone,
            "data": {k: v for k, v in data.items() if k not in LOADER_ONLY_KEYS},
            "seed": seed}


def training_data(module: VideoClassificationModule, datamodule: VideoDataModule,
                  settings: FeatureCacheSettings | None, key: dict[str, Any],
                  default_cache_dir: Path) -> L.LightningDataModule:
    """``datamodule``, or with ``settings.enabled`` its cached features under ``key`` (in
    ``settings.cache_dir``, else ``default_cache_dir``)."""
    if settings is None or not settings.enabled:
        return datamodule
    if isinstance(datamodule, ShardStreamDataModule):
        raise UserError("feature_cache.enabled reads the videos of a dataset (data.source=video "
                        "or frames); a shard stream (data.source=stream) is read as it flows: "
                        "drop one of them")
    if len(datamodule.validation_sets) > 1:
        raise UserError("feature_cache.enabled caches one validation set; several were given "
                        "(data.extra_val_lists, or data.val_list as a list): drop them or the "
                        "cache")
    tensors = build_feature_cache(module, datamodule, settings, key, default_cache_dir)
    return CachedFeatureDataModule(tensors, datamodule.batch_size)
