"""Windows assembled from one sequential pass: each frame converted and cropped once.

Frames arrive in order. A frame that no pending window samples is never converted to RGB; a
frame that several overlapping windows sample is converted, cropped and kept once, then
dropped as soon as no pending window needs it, so memory holds at most one window's frames
whatever the length of the video.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vidtl.timeline.frame_streams import DecodedFrame
from vidtl.timeline.window_plan import Window, WindowPlan

# uint8 RGB frame (H, W, 3) -> the evaluation crop, uint8 (C, size, size)
FrameTransform = Callable[[np.ndarray], torch.Tensor]


@dataclass(frozen=True)
class ReadyWindow:
    """A window whose frames are all in: its clip, uint8 ``(T, C, H, W)``, and when its last
    frame was decoded (``time.monotonic()``)."""

    window: Window
    clip: torch.Tensor
    ready_at: float


class WindowAssembler:
    """Feed frames in order with :meth:`push`; complete windows come back as they fill."""

    def __init__(self, plan: WindowPlan, transform: FrameTransform,
                 frame_count: int | None = None) -> None:
        self.plan = plan
        self.transform = transform
        # A file shorter than one window: one window over all of it.
        self.short_length = (frame_count if frame_count is not None
                             and frame_count < plan.window_length else None)
        self.next_index = 0
        self.pending: list[Window] = []
        self.needed: dict[int, int] = {}  # frame -> pending windows sampling it
        self.kept: dict[int, torch.Tensor] = {}
        self.frames_converted = 0
        self.done = False

    def _open_windows(self, frame: int) -> None:
        while not self.done and self.plan.stride_frames(self.next_index) <= frame:
            window = self.plan.window(self.next_index, self.short_length)
            self.next_index += 1
            if self.short_length is not None:
                self.done = True  # the one window of a short file
            self.pending.append(window)
            for index in set(window.frames.tolist()):
                self.needed[index] = self.needed.get(index, 0) + 1

    def push(self, index: int, frame: DecodedFrame) -> list[ReadyWindow]:
        """Frame ``index`` (the next one in order); the windows it completes."""
        self._open_windows(index)
        if index in self.needed:
            self.kept[index] = self.transform(frame.rgb())
            self.frames_converted += 1
        ready = [window for window in self.pending if self._complete_at(window) <= index]
        if not ready:
            return []
        now = time.monotonic()
        out = []
        for window in ready:
            self.pending.remove(window)
            out.append(ReadyWindow(window, torch.stack(
                [self.kept[i] for i in window.frames.tolist()]).contiguous(), now))
            for i in set(window.frames.tolist()):
                self.needed[i] -= 1
                if not self.needed[i]:
                    del self.needed[i]
                    self.kept.pop(i, None)
        return out

    def _complete_at(self, window: Window) -> int:
        # a file shorter than a window (its header's count may overstate it): its last sample
        return int(window.frames.max()) if self.short_length is not None else window.last_frame

    @property
    def frames_held(self) -> int:
        return len(self.kept)
