"""``ShardStreamDataModule``: the data module of ``data.source=stream`` (a shard store written
by ``vidtl-prepare mode=shards``, in a folder or at ``s3://bucket/prefix``).

The store carries its classes and labels, so no dataset root or annotation file is needed on
the training machines. Every subset is streamed: training in a seeded order that changes each
epoch, validation and testing in store order; each rank reads its own slice (see
:mod:`vidtl.data.shards.epoch_plan`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from vidtl.data.annotations.index import DatasetSpec
from vidtl.data.annotations.records import VideoIndex
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.loading_plan import LoadingPlan
from vidtl.data.loading.rank_shares import RankShare, shared_seed
from vidtl.data.loading.stream_loader import StreamDataLoader
from vidtl.data.shards.epoch_plan import EpochPlan
from vidtl.data.shards.shard_index import ShardIndex
from vidtl.data.shards.storage import ShardStorage
from vidtl.data.shards.stream_dataset import ShardStreamDataset


class ShardStreamDataModule(VideoDataModule):
    """Streams the clips of the shard store ``storage`` (see the module docstring)."""

    def __init__(self, storage: ShardStorage, pipeline: ClipPipeline,
                 plan: LoadingPlan | None = None, skipped_log: str | Path | None = None) -> None:
        super().__init__(DatasetSpec(root=Path(storage.url("")), format="stream"), pipeline,
                         plan, skipped_log)
        self.storage = storage
        self._shard_index: ShardIndex | None = None

    @property
    def shard_index(self) -> ShardIndex:
        if self._shard_index is None:
            self._shard_index = ShardIndex.read(self.storage)
        return self._shard_index

    @property
    def index(self) -> VideoIndex:
        if self._index is None:
            shards = self.shard_index
            self._index = VideoIndex(shards.class_names,
                                     {name: shards.records(name) for name in shards.subsets})
        return self._index

    def prepare_data(self) -> None:
        """Nothing to prepare: the store is read where it is."""

    def dataset(self, subset: str) -> ShardStreamDataset:  # type: ignore[override]
        if subset not in self.datasets:
            shards = self.shard_index.subsets.get(subset)
            if not shards:
                raise ValueError(f"shard store {self.storage.url('')} has no {subset} shards")
            plan = EpochPlan(tuple(len(s) for s in shards), self.plan.batch_size,
                             seed=torch.initial_seed(), shuffle=subset == "train")
            self.datasets[subset] = ShardStreamDataset(  # type: ignore[assignment]
                self.storage, shards, plan, self.pipeline, subset, self.skipped,
                transform=self.plan.loader_transform(self.pipeline, subset))
        return self.datasets[subset]  # type: ignore[return-value]

    def dataloader(self, subset: str) -> StreamDataLoader:  # type: ignore[override]
        """The loader of ``subset`` for this process's rank (known once the trainer runs)."""
        trainer = self.trainer
        stream = self.dataset(subset)
        share = RankShare.of(trainer)
        stream.replan(replace(stream.plan, rank=share.rank, world_size=share.world_size,
                              seed=shared_seed(trainer)))  # one order for every process
        return StreamDataLoader(
            stream, num_workers=self.plan.num_workers,
            pin_memory=self.plan.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.plan.persistent_workers,
            epoch_of=(lambda: trainer.current_epoch) if trainer is not None else None)
