"""Training data order that survives an interruption: a seeded per-epoch shuffle and a loader
whose position Lightning saves in each checkpoint.

:class:`EpochShuffleSampler` draws epoch ``e``'s order from ``(seed, e)`` alone, so a resumed
run shuffles every epoch as the interrupted one did. :class:`ResumableDataLoader` reports how
many batches of the current epoch the training loop has consumed (``state_dict``, which
Lightning stores in the checkpoint) and, after ``load_state_dict``, starts that epoch after
them: a run killed mid-epoch and resumed sees the same batches in the same order as one that
never stopped, without decoding the skipped clips. Under DDP every process draws the same order
and reads its own slice of it (:mod:`vidtl.data.loading.rank_shares`), so the resume is exact
there too, on one node or many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch

from vidtl.core.quoting import quote
from vidtl.data.loading.pooled_loader import PooledDataLoader
from vidtl.data.loading.rank_shares import RankShare, ShareSampler

log = logging.getLogger(__name__)


class EpochShuffleSampler(ShareSampler):
    """A random permutation of ``range(size)`` per epoch, drawn from ``(seed, epoch)``; under
    several processes (``share``), this process's slice of it."""

    def __init__(self, size: int, seed: int, shuffle: bool = True,
                 share: RankShare | None = None) -> None:
        super().__init__(size, share or RankShare())
        self.seed = seed
        self.shuffle = shuffle
        self._skip: tuple[int, int] | None = None  # (epoch, items) to leave out once

    def skip_once(self, epoch: int, items: int) -> None:
        """Start the next pass over epoch ``epoch`` at item ``items`` (other epochs: no skip)."""
        self._skip = (epoch, items)

    def generator(self, epoch: int) -> torch.Generator:
        """The random numbers of epoch ``epoch``: a function of the seed and the epoch only."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        return torch.randperm(self.size, generator=self.generator(epoch)).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.share.slice_of(self.order(self.epoch))
        start = 0
        if self._skip is not None:
            if self._skip[0] == self.epoch:
                start = min(self._skip[1], len(order))
            self._skip = None
        return iter(order[start:])

    def __len__(self) -> int:
        return self.size // self.share.world_size


class EpochBalancedSampler(EpochShuffleSampler):
    """Class-balanced sampling (``data.balanced_sampling``): each epoch draws ``len(labels)``
    items with replacement, each with probability inverse to its class's size, so every class
    is seen about equally often; drawn from ``(seed, epoch)`` like :class:`EpochShuffleSampler`
    (and resumable the same way)."""

    def __init__(self, labels: list[int], seed: int, share: RankShare | None = None) -> None:
        super().__init__(len(labels), seed, share=share)
        counts = torch.bincount(torch.tensor(labels))
        self.weights = 1.0 / counts[torch.tensor(labels)].double()

    def order(self, epoch: int) -> list[int]:
        return torch.multinomial(self.weights, self.size, replacement=True,
                                 generator=self.generator(epoch)).tolist()


class CountsBatches:
    """For a loader: counts the batches a pass yields (``_yielded``, which are the batches the
    training steps consumed, since Lightning fetches none ahead from a loader with a length)
    and whether the pass ran to its end (``_exhausted``)."""

    _yielded = 0
    _exhausted = False

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._yielded += 1
            yield batch
        self._exhausted = True


class ResumableDataLoader(CountsBatches, PooledDataLoader):
    """A :class:`PooledDataLoader` with Lightning's ``state_dict`` / ``load_state_dict``: its
    position in the epoch, restored through an :class:`EpochShuffleSampler`."""

    def __iter__(self) -> Iterator[Any]:
        self._yielded = 0
        self._exhausted = False
        return self._counted(self._batches())

    def _batches(self) -> Iterator[Any]:
        return super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        """The epoch, the batches of it the training steps have consumed (on each process:
        they step together), whether it was read to its end, over how many processes, and the
        seed of the order (with ``seed=null`` the next launch would draw another)."""
        batches = self._yielded
        finished = self._exhausted or batches >= len(self)
        share = getattr(self.sampler, "share", None)
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "finished": finished,
                "batches": batches, "world_size": share.world_size if share else 1,
                "seed": getattr(self.sampler, "seed", None)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` was saved. Lightning iterates the loader once before it
        sets the sampler's epoch, so the epoch is set here."""
        if not state or not isinstance(self.sampler, EpochShuffleSampler):
            if state:
                log.warning("resuming with a %s: the interrupted epoch restarts from its first "
                            "batch", type(self.sampler).__name__)
            return
        if not isinstance(state, dict) or not _is_count(state.get("epoch"), 2**31) \
                or not _is_count(state.get("batches"), len(self)):
            log.warning("the checkpoint's loader position %s is not one of this loader's; the "
                        "interrupted epoch restarts from its first batch", quote(state))
            return
        epoch = int(state["epoch"])
        self.sampler.seed = seed_to_continue(state, self.sampler.seed)
        processes = self.sampler.share.world_size
        finished = state.get("finished") is True
        if not _is_count(state.get("world_size", 1), 2**31) or (
                state.get("world_size", 1) != processes and not finished):
            log.warning("the checkpoint was saved by %s processes and this run has %d: the "
                        "interrupted epoch restarts from its first batch",
                        quote(state.get("world_size")), processes)
            self.sampler.set_epoch(epoch)
            return
        if finished:
            self.sampler.set_epoch(epoch + 1)
            return
        self.sampler.set_epoch(epoch)
        self.sampler.skip_once(epoch, int(state["batches"]) * (self.batch_size or 1))
        log.info("resuming epoch %d after its first %d batches", epoch, state["batches"])


def seed_to_continue(state: dict[str, Any], drawn: int) -> int:
    """The seed of the data order a loader position (``state``, from a checkpoint) was saved
    with, which a resumed run keeps (any torch seed, up to 2**64; with ``seed=null`` each
    launch draws another), else ``drawn``, this launch's."""
    seed = state.get("seed")
    if not _is_count(seed, 2**64 - 1) or seed == drawn:
        return drawn
    log.info("the data order continues with the interrupted run's seed %d (this launch drew "
             "%d)", seed, drawn)
    return int(seed)


def _is_count(value: Any, largest: int) -> bool:
    """Whether ``value`` (from a checkpoint) is an integer from 0 to ``largest``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= largest
