"""A DataLoader without worker processes that builds its next batches in a background thread.

With ``num_workers=0`` PyTorch's DataLoader builds each batch when it is asked for, so the
training step waits for it. :class:`PrefetchingDataLoader` keeps ``prefetch_batches`` batches
ready, built by one background thread (the clips of each batch load in the dataset's own
threads, see ``VideoClipDataset.load_threads``). Decoding releases the GIL, so the batches are
built while the main thread runs the model. Everything else (samplers, collation, pinning,
Lightning's distributed sampler) is the plain single-process DataLoader's.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

_END = object()
_running: set[tuple[threading.Event, threading.Thread]] = set()


def _stop_all() -> None:
    """At interpreter exit, stop the producers of loops that were never finished: a thread left
    inside a decoder while Python shuts down can abort the process."""
    running = list(_running)
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(timeout=10)


# Before concurrent.futures shuts its thread pools down (private hook, Python >= 3.9).
getattr(threading, "_register_atexit", atexit.register)(_stop_all)


class PrefetchingDataLoader(DataLoader):
    """A single-process :class:`DataLoader` whose iterator runs ``prefetch_batches`` ahead."""

    prefetch_batches = 2

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers > 0:
            return super().__iter__()
        return _prefetched(super().__iter__(), self.prefetch_batches)


def _prefetched(batches: Iterator[Any], depth: int) -> Iterator[Any]:
    """Yield ``batches``, produced ``depth`` ahead by a daemon thread; an exception raised while
    producing is raised here, and leaving the loop early stops the thread."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            fill()
        finally:
            _running.discard((stop, thread))

    def fill() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put((batch, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: tuple[Any, BaseException | None] = (_END, None)
        except BaseException as error:  # handed to the consumer, raised there
            item = (_END, error)
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="vidtl-prefetch", daemon=True)
    _running.add((stop, thread))
    thread.start()
    try:
        while True:
            batch, error = ready.get()
            if error is not None:
                raise error
            if batch is _END:
                return
            yield batch
    finally:
        stop.set()  # the producer ends after its current batch
