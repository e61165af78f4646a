"""The timeline's loop: a decoding thread assembles windows while the caller scores them.

Decoding (PyAV releases the GIL) overlaps with the model. For a file, the decoder waits for the
model (a short queue: nothing is lost, memory stays bounded). For a live source, the decoder
never waits: when a window is complete while the previous one is still waiting to be scored,
the waiting one is dropped and counted, so the scores stay current and nothing queues without
bound. A source that gives no frame for ``stall_timeout_s`` ends the loop with one line.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from vidtl.timeline.frame_streams import FrameStream, SourceInfo, StreamStalledError
from vidtl.timeline.window_assembly import FrameTransform, ReadyWindow, WindowAssembler
from vidtl.timeline.window_plan import WindowPlan

# uint8 clips (B, T, C, H, W) -> class probabilities (B, K)
ClipScorer = Callable[[torch.Tensor], torch.Tensor]
FILE_QUEUE = 2
# The latest windows whose latencies (and, for the picture, scores) a run keeps: a day at one
# window a second, so that a live run does not grow without bound.
MAX_KEPT = 100_000
# A live source's windows that may wait for the model (a burst at the start of a stream, a
# slow window): past this, the oldest waiting window is dropped.
LIVE_QUEUE = 4
_END = object()


@dataclass(frozen=True)
class WindowScore:
    """The class probabilities of one window of ``video``, and the time from its last frame
    decoded to its score (``latency_s``)."""

    video: str
    index: int
    start_s: float
    end_s: float
    probabilities: torch.Tensor
    latency_s: float


@dataclass
class TimelineStats:
    """What one pass did: frames decoded and converted, windows scored and dropped, seconds
    of video and of wall time, the latencies of the scored windows."""

    frames: int = 0
    frames_converted: int = 0
    windows: int = 0
    dropped: int = 0
    video_s: float = 0.0
    wall_s: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_KEPT))
    stopped_early: str = ""

    @property
    def realtime_factor(self) -> float:
        return self.video_s / self.wall_s if self.wall_s > 0 else 0.0


class _Decoder(threading.Thread):
    """Reads ``stream`` and puts :class:`ReadyWindow` objects (then ``_END``, or the error)
    on ``out``."""

    def __init__(self, stream: FrameStream, make_plan: Callable[[SourceInfo], WindowPlan],
                 transform: FrameTransform, stats: TimelineStats) -> None:
        super().__init__(daemon=True, name="vidtl-timeline-decoder")
        self.stream, self.make_plan, self.transform, self.stats = (stream, make_plan, transform,
                                                                   stats)
        self.out: queue.Queue = queue.Queue(maxsize=FILE_QUEUE)
        self.opened = threading.Event()
        self.stop = threading.Event()
        self.info: SourceInfo | None = None
        self.plan: WindowPlan | None = None
        self.last_progress = time.monotonic()

    def run(self) -> None:
        try:
            self.info = self.stream.open()
            self.plan = self.make_plan(self.info)
            if self.info.live:
                self.out = queue.Queue(maxsize=LIVE_QUEUE)
            self.opened.set()
            assembler = WindowAssembler(self.plan, self.transform)
            for index, frame in enumerate(self.stream.frames()):
                self.last_progress = time.monotonic()
                self.stats.frames = index + 1
                for ready in assembler.push(index, frame):
                    self._put(ready)
                self.stats.frames_converted = assembler.frames_converted
                if self.stop.is_set():
                    break
            else:
                for ready in assembler.finish():
                    self._put(ready)
            self.stats.stopped_early = getattr(self.stream, "stopped_early", "")
            self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            self.opened.set()
            self._put(error)
        finally:
            self.stream.close()

    def _put(self, item: object) -> None:
        if self.info is not None and self.info.live and isinstance(item, ReadyWindow):
            try:
                self.out.put_nowait(item)
            except queue.Full:
                try:
                    self.out.get_nowait()  # the oldest waiting window is stale: drop it
                    self.stats.dropped += 1
                except queue.Empty:
                    pass
                self.out.put_nowait(item)
            return
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                self.last_progress = time.monotonic()
                return
            except queue.Full:
                continue


def _check_stall(decoder: _Decoder, stall_timeout_s: float, name: str) -> None:
    """A :class:`StreamStalledError` when no frame came for ``stall_timeout_s`` (while the
    source opens, twice that: a network source's own retries say why it cannot open)."""
    idle = time.monotonic() - decoder.last_progress
    limit = stall_timeout_s if decoder.opened.is_set() else 2 * stall_timeout_s + 1
    if idle > limit:
        raise StreamStalledError(f"input {name}: no frame for {idle:.0f} s "
                                 f"(timeline.stall_timeout_s={stall_timeout_s:g}); stopping")


def score_windows(stream: FrameStream, make_plan: Callable[[SourceInfo], WindowPlan],
                  transform: FrameTransform, scorer: ClipScorer, stall_timeout_s: float = 10.0,
                  stats: TimelineStats | None = None,
                  on_open: Callable[[SourceInfo, WindowPlan], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[WindowScore]:
    """The scores of ``stream``'s windows in order, as they are scored (see the module
    docstring). ``stats`` is filled as the pass goes; ``on_open`` is told the source and its
    plan once it is open; ``should_stop`` is asked between windows (a stop signal ends the
    pass there). Closing the iterator (or an exception in the caller) stops the decoder."""
    stats = stats if stats is not None else TimelineStats()
    decoder = _Decoder(stream, make_plan, transform, stats)
    started = time.monotonic()
    decoder.start()
    told = False
    try:
        while not (should_stop is not None and should_stop()):
            try:
                item = decoder.out.get(timeout=0.1)
            except queue.Empty:
                item = None
            if not told and decoder.plan is not None:
                told = True
                if on_open is not None:
                    on_open(decoder.info, decoder.plan)
            if item is None:
                _check_stall(decoder, stall_timeout_s, getattr(stream, "name", "frames"))
                continue
            if item is _END:
                stats.video_s = max(stats.video_s, stats.frames / decoder.info.fps)
                return
            if isinstance(item, BaseException):
                raise item
            window = item.window
            probabilities = scorer(item.clip.unsqueeze(0))[0].float().cpu()
            latency = time.monotonic() - item.ready_at
            stats.windows += 1
            stats.latencies.append(latency)
            stats.video_s = window.end_s
            stats.wall_s = time.monotonic() - started
            yield WindowScore(decoder.info.name, window.index, window.start_s, window.end_s,
                              probabilities, latency)
    finally:
        decoder.stop.set()
        stats.wall_s = time.monotonic() - started
        decoder.join(timeout=2.0)
