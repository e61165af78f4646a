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

# A source shorter than one window of at most this many frames (40 s at 25 fps; their crops,
# at most 150 MB at 224 px, are kept until the first window is out) still gets one window.
MAX_PREFIX_FRAMES = 1000
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

    def __init__(self, plan: WindowPlan, transform: FrameTransform) -> None:
        self.plan = plan
        self.transform = transform
        self.next_index = 0
        self.pending: list[Window] = []
        self.needed: dict[int, int] = {}  # frame -> pending windows sampling it
        self.kept: dict[int, torch.Tensor] = {}
        # Until the first window is out, the frames seen (a source shorter than one window
        # gets one window over all of it: containers' frame counts are missing or wrong).
        self.prefix: list[torch.Tensor] | None = (
            [] if plan.window_length <= MAX_PREFIX_FRAMES else None)
        self.frames_seen = 0
        self.frames_converted = 0

    def _open_windows(self, frame: int) -> None:
        while self.plan.stride_frames(self.next_index) <= frame:
            window = self.plan.window(self.next_index)
            self.next_index += 1
            self.pending.append(window)
            for index in set(window.frames.tolist()):
                self.needed[index] = self.needed.get(index, 0) + 1

    def push(self, index: int, frame: DecodedFrame) -> list[ReadyWindow]:
        """Frame ``index`` (the next one in order); the windows it completes."""
        self._open_windows(index)
        self.frames_seen = index + 1
        if index in self.needed or self.prefix is not None:
            crop = self.transform(frame.rgb())
            self.frames_converted += 1
            if index in self.needed:
                self.kept[index] = crop
            if self.prefix is not None:
                self.prefix.append(crop)
        ready = [window for window in self.pending if window.last_frame <= index]
        if not ready:
            return []
        self.prefix = None
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

    def finish(self) -> list[ReadyWindow]:
        """At the end of the source: one window over all of it when it was shorter than one
        window (none otherwise: the last windows that do not fit are not scored)."""
        if not self.prefix:
            return []
        window = self.plan.window(0, len(self.prefix))
        clip = torch.stack([self.prefix[i] for i in window.frames.tolist()]).contiguous()
        self.prefix = None
        return [ReadyWindow(window, clip, time.monotonic())]

    @property
    def frames_held(self) -> int:
        return len(self.kept)
