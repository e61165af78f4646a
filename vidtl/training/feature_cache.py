"""Cached frame features: a frozen backbone runs once, the temporal head trains from the cache.

With ``finetune=linear_probe`` and a temporal module that works after pooling (avg, attention,
transformer, LSTM: not TSM or the adapters, which change the backbone's features), every epoch
would compute the same backbone features again. ``vidtl-train feature_cache.enabled=true``
instead decodes and embeds each video once and trains the head on the stored ``(T, D)`` frame
features:

- training videos get ``train_views`` clips each, drawn and augmented by the training pipeline
  (random sampling, crop and flip); every epoch reads a random one of them, so augmentation is
  kept up to ``train_views`` distinct clips per video;
- validation videos get their evaluation clip; testing runs on the videos as usual, since the
  checkpoint is the whole model.

The cache is written to ``cache_dir/<key>.pt`` (atomically), keyed by the backbone, its
weights, every data setting that changes features, and every video (its path, label, time
window, and its file's size and modification time), so runs and sweeps over heads share it
while the data stays the same. It is read as a file vidtl did not write
(:mod:`vidtl.core.tensor_files`), and one that does not fit (entries, shapes, labels out of
range, values that are not finite) is extracted again with a warning, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from vidtl.core.atomic import atomic_path
from vidtl.core.errors import UserError
from vidtl.core.tensor_files import load_tensor_file
from vidtl.data.annotations.records import VideoIndex
from vidtl.data.clips.batches import FeatureBatch
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.models.in_backbone import InBackboneTemporal
from vidtl.training.module import VideoClassificationModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureCacheSettings:
    """``feature_cache.*`` of ``vidtl-train``."""

    enabled: bool = False
    train_views: int = 4
    cache_dir: str | None = None


class CachedFeatures(Dataset):
    """Frame features ``(N, V, T, D)`` and labels ``(N,)`` (or multi-hot ``(N, V, K)``: a
    multi-label clip's labels depend on where it was sampled); an item is one of the ``V``
    views of a video (random when ``V > 1``) as ``(features (T, D), label)``."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        views = self.features.shape[1]
        view = int(torch.randint(views, ())) if views > 1 else 0
        labels = self.labels[index]
        return self.features[index, view].float(), labels[view] if labels.ndim == 2 else labels


def check_cacheable(module: VideoClassificationModule) -> None:
    """Features can be cached only when nothing trains inside the backbone, a subclass that
    changes clip logits (``forward_clips``) says what it does to features
    (``forward_features``), and the batch mixing needs no pixels."""
    base = VideoClassificationModule
    cls = type(module)
    if cls.forward_clips is not base.forward_clips and \
            cls.forward_features is base.forward_features:
        raise UserError(f"feature_cache: {cls.__qualname__} overrides forward_clips, which cached "
                        f"frame features skip (they go to forward_features): override "
                        f"forward_features too, or train without the cache")
    mixing = module.batch_mixing
    if mixing.cutmix_alpha > 0 and mixing.mixup_alpha == 0:
        raise UserError("module.cutmix_alpha needs clips (B, T, C, H, W); cached frame features "
                        "have no pixels to cut: use module.mixup_alpha, or train without "
                        "feature_cache")
    classifier = module.classifier
    if isinstance(classifier.temporal, InBackboneTemporal):
        raise UserError(f"feature_cache needs a temporal module that works after pooling "
                        f"(avg, attention, transformer, lstm); "
                        f"{type(classifier.temporal).__name__} changes the backbone's features")
    if any(p.requires_grad for p in classifier.backbone.parameters()):
        raise UserError("feature_cache needs a frozen backbone: finetune=linear_probe")


def videos_identity(index: VideoIndex) -> str:
    """A digest of every record of ``index`` (subset, path, label, time window) and of its
    file's size and modification time: what the cached features were made from."""
    digest = hashlib.sha256()
    for subset, records in sorted(index.subsets.items()):
        for record in records:
            try:
                stat = os.stat(record.path)
                identity = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                identity = None
            actions = [[a.label, a.start_sec, a.end_sec] for a in record.actions]
            digest.update(json.dumps([subset, str(record.path), record.label, record.start_sec,
                                      record.end_sec, identity, actions]).encode())
    return digest.hexdigest()


def cache_problem(tensors: Any, expected: dict[str, int]) -> str | None:
    """What is wrong with loaded cache ``tensors`` for ``expected`` counts and sizes (train and
    val videos, views, frames, features, classes), or ``None`` when it fits."""
    keys = {"train_features", "train_labels", "val_features", "val_labels"}
    if not isinstance(tensors, dict) or set(tensors) != keys:
        return f"expected the entries {sorted(keys)}"
    multi_hot = ((expected["views"], expected["classes"]) if expected.get("multilabel")
                 else None)
    shapes = {"train_features": (expected["train"], expected["views"], expected["frames"],
                                 expected["features"]),
              "train_labels": (expected["train"], *(multi_hot or ())),
              "val_features": (expected["val"], 1, expected["frames"], expected["features"]),
              "val_labels": (expected["val"], *((1, expected["classes"]) if multi_hot else ()))}
    for name, shape in shapes.items():
        if not isinstance(tensors[name], torch.Tensor) or tuple(tensors[name].shape) != shape:
            return f"{name} has shape {tuple(getattr(tensors[name], 'shape', ()))}, " \
                   f"expected {shape}"
    for name in ("train_labels", "val_labels"):
        labels = tensors[name]
        if multi_hot:
            if labels.dtype != torch.float32 or not ((labels == 0) | (labels == 1)).all():
                return f"{name} are not multi-hot rows of 0 and 1"
        elif labels.dtype != torch.int64 or (len(labels) and not (
                0 <= int(labels.min()) and int(labels.max()) < expected["classes"])):
            return f"{name} are not class indices 0...{expected['classes'] - 1}"
    for name in ("train_features", "val_features"):
        if not torch.isfinite(tensors[name]).all():
            return f"{name} hold values that are not finite"
    return None


def cache_key(config: dict[str, Any]) -> str:
    """A short hash of everything that changes the cached features."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@torch.no_grad()
def extract(module: VideoClassificationModule, loader: DataLoader, training: bool,
            device: torch.device, description: str, view: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame features ``(N, T, D)`` (float16) and labels of one pass over ``loader``; with
    device augmentation, every batch of every ``view`` draws its own crops and flips."""
    from rich.progress import track

    features, labels = [], []
    module.classifier.eval()
    for index, batch in enumerate(track(loader, description=description, total=len(loader))):
        rng = np.random.default_rng([torch.initial_seed(), view, index])
        clips, batch_labels = module.device_stage(batch, device, training, rng)
        features.append(module.classifier.frame_features(clips).half().cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(features), torch.cat(labels)


def build_feature_cache(module: VideoClassificationModule, datamodule: VideoDataModule,
                        settings: FeatureCacheSettings, key_config: dict[str, Any],
                        default_dir: Path) -> dict[str, torch.Tensor]:
    """The cached tensors (``train``/``val`` features and labels), extracted now if the cache
    has no entry for ``key_config``."""
    check_cacheable(module)
    folder = Path(settings.cache_dir).expanduser() if settings.cache_dir else default_dir
    key = {**key_config, "videos": videos_identity(datamodule.index),
           "train_views": settings.train_views}
    path = folder / f"{cache_key(key)}.pt"
    expected = {"train": len(datamodule.dataset("train")), "val": len(datamodule.dataset("val")),
                "views": settings.train_views, "frames": datamodule.num_frames,
                "features": module.classifier.backbone.num_features,
                "classes": module.classifier.num_classes,
                "multilabel": datamodule.index.multilabel}
    if os.path.lexists(path):
        try:
            tensors = load_tensor_file(path, "feature cache")
            problem = cache_problem(tensors, expected)
        except UserError as error:
            problem = str(error)
        if problem is None:
            log.info("frame features from the cache %s", path)
            return tensors
        log.warning("the feature cache %s is not usable (%s): extracting the features again",
                    path, problem)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module.to(device)
    def plain(subset: str) -> DataLoader:  # in order, every video once
        return DataLoader(datamodule.dataset(subset), batch_size=datamodule.plan.batch_size,
                          num_workers=datamodule.plan.num_workers, shuffle=False,
                          collate_fn=datamodule.collate_fn(subset))

    train_views, view_labels = [], []
    for view in range(settings.train_views):
        features, train_labels = extract(
            module, plain("train"), True, device,
            f"caching train features, view {view + 1}/{settings.train_views}", view)
        train_views.append(features)
        view_labels.append(train_labels)
    val_features, val_labels = extract(module, plain("val"), False, device,
                                       "caching val features")
    if datamodule.index.multilabel:  # multi-hot labels, one row per view
        train_labels, val_labels = torch.stack(view_labels, 1), val_labels[:, None]
    tensors = {"train_features": torch.stack(train_views, 1), "train_labels": train_labels,
               "val_features": val_features[:, None], "val_labels": val_labels}
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        torch.save(tensors, partial)
    log.info("frame features cached in %s", path)
    return tensors


class CachedFeatureDataModule(L.LightningDataModule):
    """Training and validation batches of cached frame features."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int) -> None:
        super().__init__()
        self.train_set = CachedFeatures(tensors["train_features"], tensors["train_labels"])
        self.val_set = CachedFeatures(tensors["val_features"], tensors["val_labels"])
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                          drop_last=len(self.train_set) > self.batch_size,
                          collate_fn=collate_features)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=collate_features)


def collate_features(items: list[tuple[torch.Tensor, torch.Tensor]]) -> FeatureBatch:
    """Cached ``(features, label)`` rows to a :class:`~vidtl.data.clips.batches.FeatureBatch`."""
    return FeatureBatch(*default_collate(items))
