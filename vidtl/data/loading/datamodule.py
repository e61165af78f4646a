"""``VideoDataModule``: annotations -> records -> clip datasets -> uint8 batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from vidtl.core.errors import UserError
from vidtl.data.annotations.index import DatasetSpec, read_index
from vidtl.data.annotations.records import VideoIndex
from vidtl.data.clips.batch_pool import SharedBatchPool
from vidtl.data.clips.collate import collate_clips
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.data.clips.skipped_videos import SkippedVideoLog
from vidtl.data.loading.encoded_batches import collate_encoded
from vidtl.data.loading.loading_plan import LoadingPlan
from vidtl.data.loading.pooled_loader import PooledDataLoader
from vidtl.data.loading.rank_shares import (
    EvaluationShare,
    RankShare,
    ShareSampler,
    check_enough,
    shared_seed,
)
from vidtl.data.loading.resumable import (
    EpochBalancedSampler,
    EpochShuffleSampler,
    ResumableDataLoader,
)
from vidtl.data.loading.threaded import ThreadedDataLoader

# What val/ metrics are computed on (metrics.json's and results.csv's validated_on).
CARVED_FROM_TRAIN, TEST_LIST, OWN_VALIDATION_SET = ("carved from train", "test list",
                                                    "validation set")


class VideoDataModule(L.LightningDataModule):
    """Streams uint8 clips ``(B, T, C, H, W)`` and labels of the dataset ``dataset``.

    Clips are made by ``pipeline`` (sampler, frame source, transforms); ``plan`` says how the
    batches are loaded and which work it leaves to the device stage. Videos that cannot be read
    are replaced, counted and appended to ``skipped_log``. Training batches come in a seeded
    per-epoch order that survives a mid-epoch resume (:mod:`vidtl.data.loading.resumable`).
    """

    def __init__(self, dataset: DatasetSpec, pipeline: ClipPipeline,
                 plan: LoadingPlan | None = None, skipped_log: str | Path | None = None) -> None:
        super().__init__()
        self.spec = dataset
        self.pipeline = pipeline
        self.plan = plan or LoadingPlan()
        self.plan.check(pipeline)
        self.skipped = SkippedVideoLog(skipped_log)
        self._index: VideoIndex | None = None
        self.datasets: dict[str, VideoClipDataset] = {}
        self._train_position: dict[str, Any] | None = None  # from a checkpoint, not yet applied

    @property
    def root(self) -> Path:
        return self.spec.root

    @property
    def num_frames(self) -> int:
        return self.pipeline.num_frames

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    @property
    def train_clip_size(self) -> tuple[int, int]:
        """(height, width) of the training clips the loader delivers."""
        if self.plan.augment_on == "device":
            return self.plan.frame_size(self.pipeline.eval_transform.short_side)
        size = self.pipeline.train_transform.crop_size
        return size, size

    def prepare_data(self) -> None:
        if self.spec.generate is not None:
            self.spec.generate(self.spec.root)

    @property
    def index(self) -> VideoIndex:
        """The dataset's records and class names (read once)."""
        if self._index is None:
            self._index = read_index(self.spec)
            for path in self._index.missing:
                self.skipped.add(path, "missing file (listed in the annotations)")
        return self._index

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    @property
    def val_is_test(self) -> bool:
        """Whether validation and test are the same videos (UCF101, HMDB51 have no val split)."""
        val, test = self.index.subsets.get("val"), self.index.subsets.get("test")
        return bool(val) and bool(test) and [r.path for r in val] == [r.path for r in test]

    @property
    def validated_on(self) -> str:
        """What ``val/`` metrics are computed on: ``carved from train``
        (``data.val_from_train``), ``test list`` (the format has no validation split: ``val/``
        numbers are test numbers) or ``validation set`` (the format's own)."""
        if self.index.val_carved:
            return CARVED_FROM_TRAIN
        return TEST_LIST if self.val_is_test else OWN_VALIDATION_SET

    @property
    def validation_sets(self) -> list[tuple[str, str | None]]:
        """``(subset, name)`` of each validation set in loader order: ``val`` first (the set
        checkpoints watch), then ``val/<name>`` for each further one (``data.extra_val_lists``,
        or ``data.val_list`` given as a list)."""
        return self.index.validation_sets

    def has_subset(self, subset: str) -> bool:
        return bool(self.index.subsets.get(subset))

    def dataset(self, subset: str) -> VideoClipDataset:
        """The clip dataset of ``train``, ``val`` (or ``val/<name>``: a further validation
        set) or ``test``; ``test`` items are multi-view:
        ``(views, label, video)`` with ``data.num_test_clips x data.num_test_crops`` views."""
        if subset not in self.datasets:
            records = self.index.subsets.get(subset)
            if not records:
                raise ValueError(f"dataset {self.root} ({self.spec.name}) has no {subset} videos")
            self.datasets[subset] = self.pipeline.dataset(
                records, subset, self.skipped,
                transform=self.plan.loader_transform(self.pipeline, subset),
                source=self.plan.loader_source(self.pipeline, subset),
                multi_hot_classes=self.index.num_classes if self.index.multilabel else None)
        return self.datasets[subset]

    def setup(self, stage: str | None = None) -> None:
        self.index  # noqa: B018 (read annotations and fail early on bad ones)

    def dataloader(self, subset: str) -> DataLoader:
        """The loader of ``train`` (seeded per-epoch order, full batches), ``val`` or ``test``."""
        dataset = self.dataset(subset)
        plan = self.plan
        training = subset == "train"
        threads = {"threads": plan.load_threads} if plan.load_threads else {}
        share = RankShare.of(self.trainer)  # this process's part (see rank_shares)
        sampler: ShareSampler
        if training:  # seeded per epoch, and resumable mid-epoch (see resumable)
            check_enough(len(dataset), share, "training videos")
            loader_class = ThreadedDataLoader if threads else ResumableDataLoader
            seed = shared_seed(self.trainer)
            if plan.balanced_sampling and self.index.multilabel:
                raise UserError("data.balanced_sampling draws by each video's one class; for "
                                "multi-label data weigh rare classes with "
                                "module.pos_weight=balanced or module.class_weights=balanced")
            sampler = (EpochBalancedSampler([r.label for r in dataset.records], seed, share)
                       if plan.balanced_sampling else
                       EpochShuffleSampler(len(dataset), seed, share=share))
        else:
            loader_class = ThreadedDataLoader if threads else PooledDataLoader
            sampler = EvaluationShare(len(dataset), share)
        collate = self.collate_fn(subset)
        if plan.num_workers > 0 and collate is collate_clips:  # batches in reused memory
            collate = SharedBatchPool(plan.num_workers)
        return loader_class(
            dataset,
            batch_size=plan.batch_size,
            sampler=sampler,
            drop_last=training and len(sampler) > plan.batch_size,
            num_workers=plan.num_workers,
            pin_memory=plan.pin_memory and torch.cuda.is_available(),  # pinning needs a GPU
            persistent_workers=plan.persistent_workers and plan.num_workers > 0,
            collate_fn=collate,
            **threads,
        )

    def collate_fn(self, subset: str) -> Callable[[Sequence[Any]], Any]:
        """The function that makes ``subset``'s items a typed batch
        (:mod:`vidtl.data.clips.batches`): JPEG bytes with ``decode_on=device`` (but for the
        test views), clips or views otherwise."""
        encoded = self.plan.decodes_on_device and subset != "test"
        return collate_encoded if encoded else collate_clips

    def train_dataloader(self) -> DataLoader:
        loader = self.dataloader("train")
        if self._train_position:
            loader.load_state_dict(self._train_position)
            self._train_position = None
        return loader

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The validation loader, or one per validation set when there are several."""
        sets = self.validation_sets
        if len(sets) == 1:
            return self.dataloader("val")
        return [self.dataloader(subset) for subset, _ in sets]

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where the training loader is in its epoch."""
        loader = self.trainer.train_dataloader if self.trainer is not None else None
        if hasattr(loader, "state_dict"):  # a ResumableDataLoader or a StreamDataLoader
            return {"train_loader": loader.state_dict()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the training loader's position (applied to the loader made next: Lightning
        restores the data module before it asks for the loaders)."""
        self._train_position = state_dict.get("train_loader")
