"""Handing batches from loader workers to the main process through reused shared memory.

A PyTorch DataLoader worker writes every batch into fresh shared memory, which the main
process then maps anew (one file descriptor passed per tensor), a page fault for every new
page. On the 2-core machine of ``docs/benchmarks.md`` that hand-over cost about 1.1 ms of a
frame-store clip's 6 (``python benchmarks/clip_profile.py``).

A :class:`SharedBatchPool`, used as the loader's ``collate_fn``, gives each worker a few slots
of shared memory that it reuses. A worker stacks the clips straight into a free slot and sends
the slot's number, shape and the batch's small items (by value); the slot's memory itself
travels only until the main process has mapped it. The main process keeps each slot mapped,
:meth:`SharedBatchPool.resolve` turns what arrives into the plain batch (a view of the slot),
and a slot becomes free again once nothing in the main process refers to its memory (its
storage's use count): a batch kept by the user keeps its slot. A worker that finds no free
slot collates into fresh memory as PyTorch does, so no batch ever waits for a slot. In the
main process (no workers, or loading threads) the pool is plain collation.

A loader must call :meth:`SharedBatchPool.begin` before each pass and pass each batch through
:meth:`~SharedBatchPool.resolve` (``vidtl.data.loading.pooled_loader.PooledDataLoader`` does
both); with ``pin_memory`` the pin thread resolves and pins the batch.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from vidtl.data.clips.batches import batch_kind
from vidtl.data.clips.collate import channels_last_clips, collate_clips

_POOLS: weakref.WeakValueDictionary[tuple[int, int], SharedBatchPool] = (
    weakref.WeakValueDictionary())
_POOL_NUMBERS = itertools.count()


@dataclass
class SlotBatch:
    """What a worker sends for a batch collated into a slot: the slot, the clips' shape and
    dtype (``(B, T, H, W, C)`` memory), the slot's memory the first time it is used, and the
    other collated items with tensors as numpy arrays (sent by value)."""

    pool: tuple[int, int]
    generation: int
    worker: int
    slot: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    memory: torch.UntypedStorage | None
    rest: list[Any]
    kind: type

    def pin_memory(self, device: Any = None) -> Any:
        """Called by the loader's pin thread: the plain batch, in pinned memory."""
        from torch.utils.data._utils.pin_memory import pin_memory

        pool = _POOLS.get(self.pool)
        if pool is None:
            raise RuntimeError("a pooled batch arrived after its SharedBatchPool was deleted")
        return pin_memory(pool.resolve(self), device)


class SharedBatchPool:
    """A ``collate_fn`` that hands worker batches over in ``slots`` reused shared-memory slots
    per worker (see the module docstring); ``collate`` makes the batches of the main process
    and those that have no clips to pool. One pass of a loader at a time."""

    def __init__(self, workers: int, slots: int = 4,
                 collate: Callable[[Sequence[Any]], Any] = collate_clips) -> None:
        self.workers = max(workers, 1)
        self.slots = slots
        self.collate = collate
        self.key = (os.getpid(), next(_POOL_NUMBERS))
        _POOLS[self.key] = self
        self.generation = 0
        # Shared with the workers: per worker and slot, whether the slot is in use and whether
        # the main process has its memory mapped.
        self._slot_table = torch.zeros(self.workers, slots, 2, dtype=torch.uint8).share_memory_()
        self._lock = threading.Lock()
        self._mapped: dict[tuple[int, int], torch.UntypedStorage] = {}  # main process
        self._handed_out: set[tuple[int, int]] = set()  # main process
        self._memory: list[torch.UntypedStorage | None] = [None] * slots  # in a worker
        self.pooled = 0  # batches that came through a slot, and through fresh memory
        self.unpooled = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)  # a worker starts with no slots and no main-process maps
        state.update(_mapped={}, _handed_out=set(), _memory=[None] * self.slots)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def begin(self, new_workers: bool = True) -> None:
        """Before each pass of a loader with workers. ``new_workers``: the pass starts new
        workers, so the slots start anew (batches still held keep their memory alive by
        themselves); otherwise persistent workers keep their slots, and those an abandoned pass
        left in flight (batches the main process never received) are freed."""
        with self._lock:
            if new_workers:
                self.generation += 1
                self._slot_table.zero_()
                self._mapped.clear()
                self._handed_out.clear()
                return
            self._free_unused()
            self._slot_table[:, :, 0] = 0
            for worker, slot in self._handed_out:
                self._slot_table[worker, slot, 0] = 1

    def __call__(self, items: Sequence[Any]) -> Any:
        info = get_worker_info()
        clips = channels_last_clips(items)
        if info is None or clips is None or info.id >= self.workers:
            return self.collate(items)
        table = self._slot_table[info.id]
        free = (table[:, 0] == 0).nonzero()
        if len(free) == 0:  # every slot still in use in the main process
            return self.collate(items)
        slot = int(free[0])
        table[slot, 0] = 1
        shape = (len(clips), *clips[0].shape)
        nbytes = clips[0].numel() * clips[0].element_size() * len(clips)
        memory = self._memory[slot]
        if memory is None or memory.nbytes() < nbytes:
            memory = self._memory[slot] = torch.UntypedStorage._new_shared(nbytes)
            table[slot, 1] = 0
        torch.stack(clips, out=torch.empty(0, dtype=clips[0].dtype).set_(memory, 0, shape))
        rest = [_to_numpy(item) for item in default_collate([tuple(i[1:]) for i in items])]
        return SlotBatch(self.key, self.generation, info.id, slot, shape, clips[0].dtype,
                         None if table[slot, 1] else memory, rest, batch_kind(items))

    def resolve(self, batch: Any) -> Any:
        """In the main process: the batch (of the items' kind, clips ``(B, T, C, H, W)``) of what a
        worker sent (other batches pass unchanged); frees the slots no longer referred to."""
        with self._lock:
            self._free_unused()
            if not isinstance(batch, SlotBatch):
                self.unpooled += 1
                return batch
            self.pooled += 1
            if batch.generation != self.generation:
                raise RuntimeError("a pooled batch of an earlier pass arrived: one pass of a "
                                   "loader with a SharedBatchPool at a time")
            slot = (batch.worker, batch.slot)
            if batch.memory is not None:  # mapped from now on, and held by the pool alone
                self._mapped[slot], batch.memory = batch.memory, None
                self._slot_table[batch.worker, batch.slot, 1] = 1
            clips = torch.empty(0, dtype=batch.dtype).set_(self._mapped[slot], 0, batch.shape)
            self._handed_out.add(slot)
        return batch.kind(clips.movedim(-1, -3), *(_to_tensors(item) for item in batch.rest))

    def _free_unused(self) -> None:
        """Give back to the workers the slots whose memory only the pool still refers to."""
        for slot in list(self._handed_out):
            if torch._C._storage_Use_Count(self._mapped[slot]._cdata) <= 1:
                self._slot_table[slot[0], slot[1], 0] = 0
                self._handed_out.discard(slot)


def _to_numpy(item: Any) -> Any:
    if isinstance(item, torch.Tensor):
        return item.numpy()
    if isinstance(item, list | tuple):
        return type(item)(_to_numpy(i) for i in item)
    return item


def _to_tensors(item: Any) -> Any:
    if isinstance(item, np.ndarray):
        return torch.from_numpy(item)
    if isinstance(item, list | tuple):
        return type(item)(_to_tensors(i) for i in item)
    return item
