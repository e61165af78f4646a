"""Frame samplers: which frame indices of a video make a clip.

A sampler maps ``(num_frames_in_video, training, rng)`` to ``num_frames`` indices. Training
draws at random from ``rng``; evaluation is deterministic (centred). Indices always lie in
``[0, length)``; videos shorter than the clip repeat frames. ``views(length, num_clips)`` gives
the ``num_clips`` temporal views of multi-view testing, spread evenly over the video (as
MMAction2's test mode); one view is the evaluation clip.

``data.sampler`` names a registered sampler (``segment``, ``dense``; add one with
``@SAMPLERS.register``) or is a config with ``_target_`` building any :class:`FrameSampler`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vidtl.core.errors import UserError
from vidtl.core.registry import Registry


@dataclass(frozen=True)
class SegmentSampler:
    """TSN sampling: split the video into ``num_frames`` equal segments, one frame from each.

    Training takes a random frame of each segment, evaluation its centre.
    """

    num_frames: int = 8

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")

    def __call__(self, length: int, training: bool, rng: np.random.Generator) -> np.ndarray:
        if length < 1:
            raise ValueError(f"cannot sample from a video of {length} frames")
        segment = length / self.num_frames
        starts = np.arange(self.num_frames) * segment
        offsets = rng.random(self.num_frames) if training else np.full(self.num_frames, 0.5)
        indices = np.floor(starts + offsets * segment).astype(np.int64)
        return np.clip(indices, 0, length - 1)

    def views(self, length: int, num_clips: int) -> list[np.ndarray]:
        """``num_clips`` clips: clip ``k`` takes the frame at ``(k + 0.5) / num_clips`` of each
        segment."""
        if length < 1:
            raise ValueError(f"cannot sample from a video of {length} frames")
        segment = length / self.num_frames
        starts = np.arange(self.num_frames) * segment
        return [np.clip(np.floor(starts + (k + 0.5) / num_clips * segment).astype(np.int64), 0,
                        length - 1) for k in range(num_clips)]


@dataclass(frozen=True)
class DenseSampler:
    """``num_frames`` frames ``frame_interval`` apart (I3D/SlowFast style).

    Training starts the clip at a random frame, evaluation centres it. A video shorter than the
    clip span is read from its start with the indices clamped to its last frame.
    """

    num_frames: int = 8
    frame_interval: int = 4

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.frame_interval < 1:
            raise ValueError(
                f"num_frames and frame_interval must be >= 1, got {self.num_frames}, "
                f"{self.frame_interval}"
            )

    @property
    def span(self) -> int:
        return (self.num_frames - 1) * self.frame_interval + 1

    def __call__(self, length: int, training: bool, rng: np.random.Generator) -> np.ndarray:
        if length < 1:
            raise ValueError(f"cannot sample from a video of {length} frames")
        slack = max(length - self.span, 0)
        start = int(rng.integers(0, slack + 1)) if training else slack // 2
        return self._clip(start, length)

    def views(self, length: int, num_clips: int) -> list[np.ndarray]:
        """``num_clips`` clips whose starts divide the possible starts evenly (one: centred)."""
        if length < 1:
            raise ValueError(f"cannot sample from a video of {length} frames")
        slack = max(length - self.span, 0)
        if num_clips == 1:
            return [self._clip(slack // 2, length)]
        step = (slack + 1) / num_clips
        return [self._clip(int((k + 0.5) * step), length) for k in range(num_clips)]

    def _clip(self, start: int, length: int) -> np.ndarray:
        indices = start + np.arange(self.num_frames, dtype=np.int64) * self.frame_interval
        return np.clip(indices, 0, length - 1)


class FrameSampler(Protocol):
    """Which frame indices make a clip: ``sampler(length, training, rng)`` gives
    ``num_frames`` indices in ``[0, length)``, ``views(length, num_clips)`` the clips of
    multi-view testing."""

    num_frames: int

    def __call__(self, length: int, training: bool, rng: np.random.Generator) -> np.ndarray: ...

    def views(self, length: int, num_clips: int) -> list[np.ndarray]: ...


SamplerBuilder = Callable[..., FrameSampler]  # (num_frames, frame_interval) -> FrameSampler
SAMPLERS: Registry[SamplerBuilder] = Registry("sampler", "data.sampler")


@SAMPLERS.register("segment")
def segment(num_frames: int, frame_interval: int = 1) -> FrameSampler:
    """TSN sampling (``frame_interval`` does not apply)."""
    return SegmentSampler(num_frames)


@SAMPLERS.register("dense")
def dense(num_frames: int, frame_interval: int = 1) -> FrameSampler:
    """``num_frames`` frames ``frame_interval`` apart."""
    return DenseSampler(num_frames, frame_interval)


def build_sampler(sampler: str | FrameSampler, num_frames: int,
                  frame_interval: int = 1) -> FrameSampler:
    """The sampler registered as ``sampler`` for this clip geometry, or ``sampler`` itself (one
    built from a ``_target_`` config); its ``num_frames`` must match."""
    if isinstance(sampler, str):
        return SAMPLERS.get(sampler)(num_frames=num_frames, frame_interval=frame_interval)
    if getattr(sampler, "num_frames", num_frames) != num_frames:
        raise UserError(f"data.sampler gives clips of {sampler.num_frames} frames but "
                        f"data.num_frames is {num_frames}")
    return sampler
