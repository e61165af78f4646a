"""Measuring how fast clips arrive: the bare decoder loop and the datamodule's loader."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidtl.data.clips.collate import collate_clips
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.shards.epoch_plan import worker_runs
from vidtl.data.shards.stream_dataset import ShardStreamDataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    """``clips`` delivered in ``seconds``."""

    clips: int
    seconds: float

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("nan")


_start_together: Any = None  # a Barrier shared by the processes of one measurement


def _share_barrier(barrier: Any) -> None:
    """A measuring process: the common start, and one thread for torch, as in a loader
    worker (more would compete for the same cores)."""
    global _start_together
    _start_together = barrier
    torch.set_num_threads(1)


def decode_clips(dataset: VideoClipDataset, clips: int, seed: int) -> Rate:
    """Open, sample and decode ``clips`` clips of ``dataset`` in this process: no transform, no
    batching, no inter-process transfer (the floor under the loader's cost)."""
    rng = np.random.default_rng(seed)
    records = dataset.records
    order = rng.permutation(len(records))
    warmup = 2  # the first clips pay for lazy imports and cold caches
    start = time.perf_counter()
    failed = 0
    for i in range(warmup + clips):
        if i == warmup:
            if _start_together is not None:
                _start_together.wait()  # all processes measure at the same time
            start = time.perf_counter()
        record = records[order[i % len(records)]]
        try:
            reader = dataset.source.open(record.path)
            reader.get_frames(dataset.sampler(len(reader), dataset.training, rng))
        except Exception as error:  # a broken video costs its time, like in the loader
            failed += 1
            log.warning("decoder loop: %s", error)
    if failed:
        log.warning("decoder loop: %d of %d clips failed to decode", failed, warmup + clips)
    return Rate(clips, time.perf_counter() - start)


def load_clips(dataset: VideoClipDataset | ShardStreamDataset, clips: int, seed: int,
               processes: int = 1, batch_size: int = 8) -> Rate:
    """The loader's whole work per clip without the loader, in this process: each clip made by
    the loader's own dataset (opened, sampled, decoded, cropped and flipped), collated in
    batches of ``batch_size``; no worker processes, no hand-over between processes. A stream
    reads the run of shards a loader worker (``seed`` of ``processes``) would."""
    rng = np.random.default_rng(seed)
    if isinstance(dataset, ShardStreamDataset):
        run = worker_runs(dataset.plan.batches(0), processes)[seed % processes]
        numbers = [n for batch in run for n in batch]
        load = dataset.item
    else:
        numbers = rng.permutation(len(dataset.records)).tolist()

        def load(index: int) -> tuple:
            return dataset._load(index, rng)
    warmup = batch_size  # the first clips pay for lazy imports and cold caches
    start, batch = time.perf_counter(), []
    for i in range(warmup + clips):
        if i == warmup:
            if _start_together is not None:
                _start_together.wait()
            start = time.perf_counter()
        batch.append(load(numbers[i % len(numbers)]))
        if len(batch) == batch_size or i == warmup + clips - 1:
            collate_clips(batch)
            batch = []
    return Rate(clips, time.perf_counter() - start)


def decoder_loop_rate(dataset: VideoClipDataset | ShardStreamDataset, clips: int,
                      processes: int, work: str = "decode", batch_size: int = 8) -> Rate:
    """The bare loop in ``processes`` parallel processes (``clips`` each, measured from a common
    start): all clips over the time of the slowest process. ``work``: ``decode`` (open, sample,
    decode: :func:`decode_clips`) or ``load`` (the loader's whole per-clip work and the batch:
    :func:`load_clips`)."""
    if work == "load":
        function = functools.partial(load_clips, dataset, clips, processes=processes,
                                     batch_size=batch_size)
    else:
        function = functools.partial(decode_clips, dataset, clips)
    if processes <= 1:
        return function(0)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    with context.Pool(processes, initializer=_share_barrier, initargs=(barrier,)) as pool:
        rates = pool.map(function, range(processes))
    return Rate(clips * processes, max(r.seconds for r in rates))


def loader_rate(batches: Iterator, clips: int, warmup_batches: int = 1) -> Rate:
    """Clips per second out of ``batches`` (a loader's, see :func:`cycle`) over about ``clips``
    clips, after ``warmup_batches`` (one per worker: worker start-up is not counted)."""
    for _ in range(warmup_batches):
        next(batches)
    delivered, start = 0, time.perf_counter()
    while delivered < clips:
        delivered += len(next(batches)[1])
    return Rate(delivered, time.perf_counter() - start)


def cycle(loader: Iterable) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader
