"""A DataLoader whose batches are built by threads of the main process instead of workers.

Worker processes cost memory and start-up, and hand each batch over between processes (through
reused shared memory, :mod:`vidtl.data.clips.batch_pool`). The decoders release the GIL, so
threads can do the work instead (on the 2-core machine of docs/benchmarks.md they reach 78% of
the frame store's bare loop, workers 97%):
:class:`ThreadedDataLoader` runs ``threads`` threads that each take the next batch of indices,
load its items, collate (and pin) it, while the main thread trains; batches come out in the
sampler's order, at most ``threads * prefetch_factor`` ahead. Samplers, collation, pinning and
Lightning's distributed sampler are the plain DataLoader's.

Datasets that define ``batch_generators(indices)`` and ``load_batch(indices, generators)``
(:class:`~vidtl.data.clips.dataset.VideoClipDataset`) get their random numbers drawn in batch order,
so a seeded run repeats whatever the threads' timing.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from typing import Any

from torch.utils.data._utils.pin_memory import pin_memory

from vidtl.data.loading.resumable import ResumableDataLoader

_running: set[tuple[threading.Event, threading.Thread]] = set()


def _stop_all() -> None:
    """At interpreter exit, stop the threads of loops that were never finished: a thread left
    inside a decoder while Python shuts down can abort the process."""
    running = list(_running)
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(timeout=10)


# Before concurrent.futures shuts its thread pools down (private hook, Python >= 3.9).
getattr(threading, "_register_atexit", atexit.register)(_stop_all)


class ThreadedDataLoader(ResumableDataLoader):
    """A :class:`DataLoader` with ``num_workers=0`` whose batches ``threads`` threads build
    (resumable mid-epoch like :class:`ResumableDataLoader`)."""

    def __init__(self, *args: Any, threads: int = 2, prefetch_batches: int = 2,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads = threads
        self.prefetch_batches = prefetch_batches

    def _batches(self) -> Iterator[Any]:
        if self.num_workers > 0 or self.threads <= 0 or not self._auto_collation:
            return super()._batches()
        return _threaded_batches(self)


class _Batches:
    """The shared state of one pass: the index batches handed out and the batches built."""

    def __init__(self, loader: ThreadedDataLoader) -> None:
        self.loader = loader
        self.indices = iter(loader._index_sampler)
        self.condition = threading.Condition()
        self.stop = threading.Event()
        self.built: dict[int, tuple[Any, BaseException | None, bool]] = {}
        self.handed_out = 0  # index batches taken by threads
        self.consumed = 0  # batches yielded
        self.limit = max(1, loader.threads * loader.prefetch_batches)

    def take(self) -> tuple[int, list[int] | None, Any]:
        """The next batch number, its indices (``None`` at the end) and its generators."""
        with self.condition:
            while self.handed_out - self.consumed >= self.limit and not self.stop.is_set():
                self.condition.wait(0.1)
            number = self.handed_out
            if self.stop.is_set():
                return number, None, None
            self.handed_out += 1
            try:
                indices = next(self.indices)
            except StopIteration:
                self.stop.set()  # no more work: the other threads end too
                return number, None, None
            dataset = self.loader.dataset
            generators = (dataset.batch_generators(indices)
                          if hasattr(dataset, "batch_generators") else None)
            return number, indices, generators

    def build(self, indices: list[int], generators: Any) -> Any:
        dataset = self.loader.dataset
        if generators is not None:
            items = dataset.load_batch(indices, generators)
        elif hasattr(dataset, "__getitems__"):
            items = dataset.__getitems__(indices)
        else:
            items = [dataset[i] for i in indices]
        batch = self.loader.collate_fn(items)
        if self.loader.pin_memory:
            batch = pin_memory(batch, self.loader.pin_memory_device or None)
        return batch

    def work(self) -> None:
        while True:
            number, indices, generators = self.take()
            if indices is None:
                self.put(number, None, None, end=True)
                return
            try:
                self.put(number, self.build(indices, generators), None)
            except BaseException as error:  # raised in the main thread, in order
                self.put(number, None, error)
                return

    def put(self, number: int, batch: Any, error: BaseException | None, end: bool = False
            ) -> None:
        with self.condition:
            self.built.setdefault(number, (batch, error, end))
            self.condition.notify_all()

    def next(self) -> tuple[Any, BaseException | None, bool]:
        with self.condition:
            while self.consumed not in self.built:
                self.condition.wait()
            item = self.built.pop(self.consumed)
            self.consumed += 1
            self.condition.notify_all()
            return item


def _threaded_batches(loader: ThreadedDataLoader) -> Iterator[Any]:
    state = _Batches(loader)
    for _ in range(loader.threads):
        _start_thread(state)
    try:
        while True:
            batch, error, end = state.next()
            if error is not None:
                raise error
            if end:
                return
            yield batch
    finally:
        state.stop.set()  # each thread ends after its current batch
        with state.condition:
            state.condition.notify_all()


def _start_thread(state: _Batches) -> None:
    def run() -> None:
        try:
            state.work()
        finally:
            _running.discard(entry)

    thread = threading.Thread(target=run, name="vidtl-loader", daemon=True)
    entry = (state.stop, thread)
    _running.add(entry)
    thread.start()
