"""The data loader of a shard stream: one collated batch per item, each pass an epoch of the
stream's plan, and its position saved in checkpoints for an exact mid-epoch resume."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from vidtl.data.clips.batch_pool import SharedBatchPool
from vidtl.data.clips.collate import collate_clips
from vidtl.data.loading.pooled_loader import PooledDataLoader
from vidtl.data.loading.resumable import CountsBatches, seed_to_continue
from vidtl.data.shards.epoch_plan import delivered
from vidtl.data.shards.stream_dataset import ShardStreamDataset

log = logging.getLogger(__name__)

# Lightning warns that an IterableDataset's length may be wrong with several workers; the
# stream's workers split its batches themselves, so the length is exact.
warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")


class StreamDataLoader(CountsBatches, PooledDataLoader):
    """Loads a :class:`ShardStreamDataset`. ``epoch_of()`` names the epoch of each pass (the
    trainer's; by default passes are counted). Persistent workers keep their shards in memory
    from one epoch to the next and learn each pass's epoch from the dataset's shared memory."""

    def __init__(self, dataset: ShardStreamDataset, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True,
                 epoch_of: Callable[[], int] | None = None) -> None:
        # batch_size=None: each element of the dataset is one batch's items, which collate_fn
        # collates (in the worker, into reused shared memory when there are workers)
        super().__init__(dataset, batch_size=None, num_workers=num_workers,
                         pin_memory=pin_memory,
                         persistent_workers=persistent_workers and num_workers > 0,
                         collate_fn=SharedBatchPool(num_workers) if num_workers else collate_clips)
        self.epoch_of = epoch_of
        self._passes = 0
        self._resume: dict[str, Any] | None = None
        self._epoch = 0
        self._consumed_before: list[int] = []
        self._pass_positions: list[int] = []

    def __iter__(self) -> Iterator[Any]:
        stream: ShardStreamDataset = self.dataset  # type: ignore[assignment]
        epoch = self.epoch_of() if self.epoch_of is not None else self._passes
        self._passes += 1
        consumed: list[int] = []
        if self._resume is not None:
            # The first pass after a restore is the interrupted epoch. (Lightning makes its
            # iterator before it restores its epoch count, and keeps it for that epoch.)
            state, self._resume = self._resume, None
            epoch = int(state["epoch"])
            consumed = [int(p) for p in state["consumed"]]
            log.info("resuming epoch %d of the stream after %d of its batches", epoch,
                     len(consumed))
        done = set(consumed)
        self._pass_positions = [p for p in range(len(stream)) if p not in done]
        stream.start(epoch, consumed)
        self._epoch, self._consumed_before, self._exhausted = epoch, consumed, False
        self._yielded = 0
        return self._counted(super().__iter__())

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the positions (in its plan) of the batches consumed so far."""
        consumed = self._consumed_before + delivered(self._pass_positions, self.num_workers,
                                                     self._yielded)
        plan = self.dataset.plan  # type: ignore[attr-defined]
        return {"epoch": self._epoch, "consumed": consumed, "finished": self._exhausted,
                "world_size": plan.world_size, "seed": plan.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after ``state``'s batches when its epoch is read next."""
        if not state or not isinstance(state, dict):
            return
        stream: ShardStreamDataset = self.dataset  # type: ignore[assignment]
        seed = seed_to_continue(state, stream.plan.seed)
        if seed != stream.plan.seed:
            stream.replan(replace(stream.plan, seed=seed))
        if state.get("finished") is not False:
            return
        consumed = state.get("consumed")
        epoch = state.get("epoch")
        if not isinstance(epoch, int) or not 0 <= epoch < 2**31 or not isinstance(consumed, list) \
                or len(set(consumed)) != len(consumed) or not all(
                    isinstance(p, int) and 0 <= p < len(self.dataset) for p in consumed):
            log.warning("the checkpoint's stream position is not one of this stream's; the "
                        "interrupted epoch restarts from its first batch")
            return
        if state.get("world_size") != self.dataset.plan.world_size:  # type: ignore[attr-defined]
            log.warning("the checkpoint was read by %s ranks, this run has %s: the interrupted "
                        "epoch restarts from its first batch", state.get("world_size"),
                        self.dataset.plan.world_size)  # type: ignore[attr-defined]
            return
        self._resume = state
