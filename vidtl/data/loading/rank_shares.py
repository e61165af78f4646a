"""Which items each process reads when a run has several (DDP on one node or many).

Lightning's own answer wraps a loader's sampler in a ``DistributedSampler`` that pads every
rank's share to the same length by repeating items: a training epoch then reads some videos
twice, validation counts them twice, and the wrapped sampler cannot resume mid-epoch. vidtl's
samplers split the data themselves, and are ``DistributedSampler`` subclasses so that Lightning
leaves them as they are:

- **Training** (:class:`~vidtl.data.loading.resumable.EpochShuffleSampler`): every process draws
  the same epoch order (from the same seed, :func:`shared_seed`) and takes its contiguous
  slice of ``size // world_size`` items: every video at most once per epoch across processes
  (the fewer than ``world_size`` left over are left out, as ``drop_last`` leaves out a partial
  batch), equal steps on every process, and a position that resumes exactly.
- **Evaluation** (:class:`EvaluationShare`): process ``r`` reads items ``r, r + W, r + 2W...``,
  nothing repeated, so every video is counted once; shares differ by one item at most (the
  metrics are gathered as sums, and test scores with :func:`gather_uneven`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DistributedSampler

from vidtl.core.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankShare:
    """Process ``rank`` of ``world_size`` (global: over every node)."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} of {self.world_size}")

    @classmethod
    def of(cls, trainer: Any) -> RankShare:
        """The trainer's process (one process when there is no trainer)."""
        if trainer is None:
            return cls()
        return cls(int(trainer.global_rank), int(trainer.world_size))

    def slice_of(self, order: list[int]) -> list[int]:
        """This process's contiguous slice of ``order``: ``len(order) // world_size`` items."""
        each = len(order) // self.world_size
        return order[self.rank * each:(self.rank + 1) * each]


class ShareSampler(DistributedSampler):
    """Base of vidtl's samplers: a ``DistributedSampler`` (so Lightning does not wrap it in its
    padding one) that does not call ``DistributedSampler.__init__`` (no process group needed)."""

    def __init__(self, size: int, share: RankShare) -> None:  # noqa: D107
        self.size = size
        self.share = share
        self.num_replicas, self.rank = share.world_size, share.rank
        self.epoch = 0
        self.drop_last = False

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch


class EvaluationShare(ShareSampler):
    """Items ``rank, rank + world_size, ...`` of ``range(size)`` in order, none repeated. A
    process left without an item (fewer items than processes) reads the last one, whose
    result then counts twice; a warning says so."""

    def __init__(self, size: int, share: RankShare) -> None:  # noqa: D107
        super().__init__(size, share)
        self.shuffle = False
        self.indices = list(range(share.rank, size, share.world_size))
        if not self.indices and size:
            log.warning("%d videos to evaluate over %d processes: process %d evaluates the "
                        "last one again", size, share.world_size, share.rank)
            self.indices = [size - 1]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def check_enough(size: int, share: RankShare, what: str) -> None:
    """Refuse to train on fewer items than processes (each process must take a step)."""
    if size < share.world_size:
        raise UserError(f"{size} {what} cannot be shared by {share.world_size} processes: "
                        f"each needs at least one; use fewer devices or nodes")


def shared_seed(trainer: Any) -> int:
    """This process's torch seed, or rank 0's when there are several processes (they must
    draw one order; with ``seed=null`` each process's own seed differs)."""
    seed = torch.initial_seed()
    if trainer is None or int(getattr(trainer, "world_size", 1)) <= 1:
        return seed
    return int(trainer.strategy.broadcast(seed, src=0))


def gather_uneven(module: Any, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` of every process, concatenated in rank order, whatever their lengths (dim
    0): each is padded to the longest for ``all_gather`` and cut back after."""
    length = torch.tensor([len(tensor)], device=tensor.device)
    lengths = module.all_gather(length).reshape(-1).tolist()
    longest = max(lengths)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[:len(tensor)] = tensor
    gathered = module.all_gather(padded).reshape(len(lengths), longest, *tensor.shape[1:])
    return torch.cat([part[:n] for part, n in zip(gathered, lengths, strict=True)])


def buffers_from_rank_zero(module: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics). DDP keeps the weights in
    step, but each process updates its buffers on its own batches after the last broadcast:
    evaluated as they are, each process would score its share with another model than the one
    the checkpoints hold (rank 0's)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
            torch.distributed.get_world_size() <= 1:
        return
    for buffer in module.buffers():
        torch.distributed.broadcast(buffer.data, src=0)
