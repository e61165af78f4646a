"""Where the sliding windows of a timeline lie, and which frames each one samples.

Window ``k`` starts at frame ``round(k * stride_s * fps)`` and spans ``round(window_s * fps)``
frames; inside it the checkpoint's sampler picks its frames as in evaluation (segment centres
for TSN sampling, a centred run of ``frame_interval``-spaced frames for dense sampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vidtl.core.errors import UserError
from vidtl.data.clips.sampling import FrameSampler

# Without a frame rate in the stream's header (some live sources), frames are timed at this.
FALLBACK_FPS = 25.0
# Segment (TSN) sampling covers a whole trimmed clip in training, whose length a checkpoint
# does not record: its windows default to this many seconds. Measured on a long video of
# UCF101 clips (benchmarks/timeline_accuracy.py), 2 s windows are as accurate as 4 s ones,
# place boundaries closer and report 2 s sooner; choose window_s for the actions looked for.
SEGMENT_WINDOW_S = 2.0
MAX_WINDOW_S = 3600.0


def default_window_s(sampler: FrameSampler, fps: float) -> float:
    """The span the checkpoint's sampling covers: a dense sampler's
    ``(num_frames - 1) * frame_interval + 1`` frames at ``fps``; :data:`SEGMENT_WINDOW_S` for
    samplers that spread their frames over a whole clip."""
    span = getattr(sampler, "span", None)
    if isinstance(span, int) and span > 0:
        return span / fps
    return SEGMENT_WINDOW_S


@dataclass(frozen=True)
class Window:
    """Window ``index`` of a video: frames ``[start, start + length)``, the absolute indices
    of the frames it samples, and its time span in seconds."""

    index: int
    start: int
    length: int
    frames: np.ndarray
    fps: float

    @property
    def start_s(self) -> float:
        return self.start / self.fps

    @property
    def end_s(self) -> float:
        return (self.start + self.length) / self.fps

    @property
    def last_frame(self) -> int:
        """The window's last frame: it is complete (and scored) once this one is in."""
        return self.start + self.length - 1


@dataclass(frozen=True)
class WindowPlan:
    """Windows of ``window_s`` seconds every ``stride_s`` seconds over a video at ``fps``,
    sampled by ``sampler``."""

    sampler: FrameSampler
    fps: float
    window_s: float
    stride_s: float

    def __post_init__(self) -> None:
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise UserError(f"the video's frame rate must be above 0, got {self.fps}")
        for key, value in (("timeline.window_s", self.window_s),
                           ("timeline.stride_s", self.stride_s)):
            if isinstance(value, bool) or not (isinstance(value, (int, float))
                                               and 0 < value <= MAX_WINDOW_S):
                raise UserError(f"{key} must be a number of seconds above 0 and at most "
                                f"{MAX_WINDOW_S:g}, got {value!r}")
        if self.window_length < 1 or self.stride_frames(1) < 1:
            raise UserError(f"timeline.window_s and timeline.stride_s must each span at least "
                            f"one frame at {self.fps:g} fps, got {self.window_s} and "
                            f"{self.stride_s}")

    @property
    def window_length(self) -> int:
        return round(self.window_s * self.fps)

    def stride_frames(self, index: int) -> int:
        return round(index * self.stride_s * self.fps)

    @cached_property
    def offsets(self) -> np.ndarray:
        """The frames a window samples, relative to its start (the sampler's evaluation
        clip)."""
        return self.sampler(self.window_length, False, np.random.default_rng(0))

    def window(self, index: int, length: int | None = None) -> Window:
        """Window ``index`` (``length``: a shorter span, for a video shorter than one
        window)."""
        length = self.window_length if length is None else length
        offsets = (self.offsets if length == self.window_length else
                   self.sampler(length, False, np.random.default_rng(0)))
        start = self.stride_frames(index)
        return Window(index, start, length, start + np.asarray(offsets, dtype=np.int64),
                      self.fps)
