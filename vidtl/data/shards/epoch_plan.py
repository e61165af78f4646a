"""Which samples of a shard store each rank and each loader worker reads in an epoch, in which
batches and in which order: pure functions of the shard sizes, the seed and the epoch.

- **Order.** Epoch ``e`` shuffles the shards and the samples within each shard, from
  ``(seed, e)`` alone. ``vidtl-prepare mode=shards`` already wrote the samples to shards in a
  seeded random order, so a batch drawn from one shard is a random draw from the dataset.
- **Ranks.** The epoch's sequence is cut into ``world_size`` contiguous slices, whose sizes
  differ by one at most: every sample is read once per epoch, by one rank. Every rank makes
  the same number of batches (DDP steps together): full batches first, and where a rank has
  fewer samples its last batches are a little smaller. Nothing is repeated or dropped.
- **Workers.** A rank's batches are cut into ``num_workers`` contiguous runs, so each worker
  reads its own few shards. The data loader takes one batch from each worker in turn
  (:func:`delivery_order`), which is what a checkpoint's batch count is counted in.
- **Resume.** :func:`delivered` tells which batches of a pass a loader had yielded after so
  many; a checkpoint keeps their positions, and the resumed pass reads the others, whatever the
  number of workers then and now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import torch

from vidtl.core.errors import UserError

Batch = tuple[int, ...]  # global sample numbers: shard offset + position in the shard


@dataclass(frozen=True)
class EpochPlan:
    """The batches of one rank over a store whose shards hold ``shard_sizes`` samples."""

    shard_sizes: tuple[int, ...]
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    world_size: int = 1
    rank: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} of {self.world_size}")
        if self.total < self.world_size:
            raise UserError(f"the shard store holds {self.total} samples, fewer than the "
                            f"{self.world_size} ranks that read it")
        if self.total // self.world_size < self.num_batches:
            raise UserError(f"{self.total} samples over {self.world_size} ranks cannot make "
                            f"{self.num_batches} batches on every rank: raise data.batch_size")

    @property
    def total(self) -> int:
        return sum(self.shard_sizes)

    @property
    def offsets(self) -> list[int]:
        """The global number of each shard's first sample."""
        return [0, *accumulate(self.shard_sizes)][:-1]

    @property
    def num_batches(self) -> int:
        """Batches per rank and epoch (the same on every rank)."""
        return math.ceil(math.ceil(self.total / self.world_size) / self.batch_size)

    def order(self, epoch: int) -> list[int]:
        """Every sample number once, in epoch ``epoch``'s order (shard by shard)."""
        offsets = self.offsets
        if not self.shuffle:
            return list(range(self.total))
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        order: list[int] = []
        for shard in torch.randperm(len(self.shard_sizes), generator=generator).tolist():
            within = torch.randperm(self.shard_sizes[shard], generator=generator)
            order.extend((within + offsets[shard]).tolist())
        return order

    def rank_samples(self, epoch: int) -> list[int]:
        """This rank's contiguous slice of the epoch's order."""
        order = self.order(epoch)
        start = self.rank * self.total // self.world_size
        return order[start:(self.rank + 1) * self.total // self.world_size]

    def batches(self, epoch: int) -> list[Batch]:
        """This rank's batches of epoch ``epoch``: ``num_batches`` of them, full ones first."""
        samples = self.rank_samples(epoch)
        batches: list[Batch] = []
        start = 0
        for made in range(self.num_batches):
            size = min(self.batch_size, len(samples) - start - (self.num_batches - made - 1))
            batches.append(tuple(samples[start:start + size]))
            start += size
        return batches


def worker_runs(batches: list, num_workers: int) -> list[list]:
    """``batches`` cut into ``max(num_workers, 1)`` contiguous runs (longer ones first)."""
    parts = max(num_workers, 1)
    runs, start = [], 0
    for worker in range(parts):
        size = len(batches) // parts + (1 if worker < len(batches) % parts else 0)
        runs.append(batches[start:start + size])
        start += size
    return runs


def delivery_order(runs: list[list]) -> list:
    """The order a data loader yields the workers' runs in: one batch of each in turn."""
    return [run[step] for step in range(max(map(len, runs), default=0))
            for run in runs if step < len(run)]


def delivered(positions: list[int], num_workers: int, count: int) -> list[int]:
    """Which of a pass's batches (``positions`` in the epoch's plan) a loader with
    ``num_workers`` workers had delivered after ``count`` of them."""
    return delivery_order(worker_runs(positions, num_workers))[:count]
