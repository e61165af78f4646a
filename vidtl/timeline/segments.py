"""Segments: consecutive windows of one label, after smoothing, as they close.

Each window speaks for the ``stride_s`` around its centre (the first from the video's start,
the last to its end). Its probabilities are smoothed over ``smooth`` windows centred on it (a
median or a mean filter; 1: none), its label is the most probable class of the smoothed
scores, and consecutive windows of one label form a segment. A segment shorter than
``min_segment_s`` is absorbed by its neighbour (the one before, or the one after for the
first). Segments are produced as soon as they are final, so a live stream's segments are
written while it runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from vidtl.core.errors import UserError

FILTERS = ("median", "mean")
MAX_SMOOTH = 999


@dataclass
class Segment:
    """``label`` from ``start_s`` to ``end_s``; ``mean_probability`` is the mean smoothed
    probability of ``label`` over the segment's windows."""

    start_s: float
    end_s: float
    label: int
    probability_sum: float
    windows: int

    @property
    def mean_probability(self) -> float:
        return self.probability_sum / max(self.windows, 1)

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def check_smoothing(smooth: int, filter: str, min_segment_s: float) -> None:
    if isinstance(smooth, bool) or not isinstance(smooth, int) or not 1 <= smooth <= MAX_SMOOTH:
        raise UserError(f"timeline.smooth must be a whole number of windows from 1 to "
                        f"{MAX_SMOOTH}, got {smooth!r}")
    if filter not in FILTERS:
        raise UserError(f"timeline.smooth_filter must be one of {FILTERS}, got {filter!r}")
    if not isinstance(min_segment_s, (int, float)) or not 0 <= min_segment_s < 1e6:
        raise UserError(f"timeline.min_segment_s must be a number of seconds >= 0, got "
                        f"{min_segment_s!r}")


class Smoother:
    """A centred median or mean filter over the last ``width`` windows' probabilities:
    :meth:`push` returns the smoothed scores of the window ``width // 2`` back, once its
    neighbours after it are in; :meth:`flush` the rest (over the neighbours there are)."""

    def __init__(self, width: int, filter: str) -> None:
        self.width, self.filter = width, filter
        self.half = width // 2
        self.scores: deque[torch.Tensor] = deque(maxlen=2 * self.half + 1)
        self.spans: deque[tuple[float, float]] = deque()
        self.emitted = 0
        self.pushed = 0

    def _reduce(self, rows: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(rows)
        return stacked.median(0).values if self.filter == "median" else stacked.mean(0)

    def _emit(self, centre: int) -> tuple[float, float, torch.Tensor]:
        # the deque holds windows [pushed - len, pushed); the centre's neighbours within half
        first = self.pushed - len(self.scores)
        rows = [s for i, s in enumerate(self.scores, first) if abs(i - centre) <= self.half]
        start, end = self.spans.popleft()
        self.emitted += 1
        return start, end, self._reduce(rows)

    def push(self, start_s: float, end_s: float, scores: torch.Tensor
             ) -> Iterator[tuple[float, float, torch.Tensor]]:
        self.scores.append(scores)
        self.spans.append((start_s, end_s))
        self.pushed += 1
        while self.pushed - 1 - self.emitted >= self.half:
            yield self._emit(self.emitted)

    def flush(self) -> Iterator[tuple[float, float, torch.Tensor]]:
        while self.emitted < self.pushed:
            yield self._emit(self.emitted)


class SegmentBuilder:
    """Windows in (their span and smoothed scores), final segments out.

    A segment is final once the one after it has another label and has lasted
    ``min_segment_s`` (it can then neither be absorbed nor absorb more): with
    ``min_segment_s=0``, as soon as the label changes. Segments are contiguous: each starts
    where the one before ended, whatever the rounding of window starts to frames.
    """

    def __init__(self, stride_s: float, min_segment_s: float) -> None:
        self.stride_s = stride_s
        self.min_segment_s = min_segment_s
        self.run: Segment | None = None  # the segment the current windows extend
        self.pending: Segment | None = None  # closed, kept until nothing can change it
        self.last_end = 0.0

    def add(self, start_s: float, end_s: float, scores: torch.Tensor) -> list[Segment]:
        """One window's span and smoothed scores; the segments that became final."""
        centre = (start_s + end_s) / 2
        label = int(scores.argmax())
        probability = float(scores[label])
        self.last_end = end_s
        reach = min(centre + self.stride_s / 2, end_s)  # never past the window's end
        if self.run is not None and self.run.label == label:
            self.run.end_s = max(self.run.end_s, reach)
            self.run.probability_sum += probability
            self.run.windows += 1
            return self._settled()
        closed = self.run
        start = closed.end_s if closed is not None else start_s  # the first from its start
        self.run = Segment(start, max(start, reach), label, probability, 1)
        final = self._close(closed) if closed is not None else []
        return final + self._settled()

    def _settled(self) -> list[Segment]:
        pending, run = self.pending, self.run
        if (pending is not None and run is not None and run.label != pending.label
                and run.length_s >= self.min_segment_s
                and pending.length_s >= self.min_segment_s):
            self.pending = None
            return [pending]
        return []

    def _close(self, segment: Segment) -> list[Segment]:
        pending = self.pending
        if pending is None:
            self.pending = segment
            return []
        if segment.length_s < self.min_segment_s:  # a blip: the segment before covers it
            pending.end_s = segment.end_s
            return []
        if pending.length_s < self.min_segment_s or pending.label == segment.label:
            # a short first segment joins the next; equal labels around a blip rejoin
            if pending.label == segment.label:
                segment.probability_sum += pending.probability_sum
                segment.windows += pending.windows
            segment.start_s = pending.start_s
            self.pending = segment
            return []
        self.pending = segment
        return [pending]

    def finish(self) -> list[Segment]:
        """The last segments, once the video has ended (the last reaches its last window's
        end)."""
        final = []
        if self.run is not None:
            self.run.end_s = self.last_end
            final += self._close(self.run)
            self.run = None
        if self.pending is not None:
            final.append(self.pending)
            self.pending = None
        return final


class ThresholdSegmentBuilder:
    """Segments of a model with thresholds (chosen on validation): for each class, the
    consecutive windows whose smoothed probability reaches the class's threshold (a multi-label
    model's classes, or a detector's positive class; a class at ``inf`` never does). Segments of
    different classes may overlap; one shorter than ``min_segment_s`` is dropped (a blip).
    Each window speaks for the span around its centre, as for :class:`SegmentBuilder`; a
    segment is final (and returned) when its class falls below its threshold, or at the end.
    """

    def __init__(self, stride_s: float, min_segment_s: float, thresholds: torch.Tensor) -> None:
        self.stride_s = stride_s
        self.min_segment_s = min_segment_s
        self.thresholds = thresholds.detach().float().cpu()
        self.open: dict[int, Segment] = {}
        self.covered_to: float | None = None  # where the previous window's span ended
        self.last_end = 0.0

    def add(self, start_s: float, end_s: float, scores: torch.Tensor) -> list[Segment]:
        """One window's span and smoothed scores; the segments that became final."""
        centre = (start_s + end_s) / 2
        low = start_s if self.covered_to is None else self.covered_to
        high = max(low, min(centre + self.stride_s / 2, end_s))
        self.covered_to, self.last_end = high, end_s
        scores = scores.detach().float().cpu()
        above = set(torch.nonzero(scores >= self.thresholds).reshape(-1).tolist())
        final = []
        for label in sorted(set(self.open) - above):
            final += self._close(self.open.pop(label))
        for label in sorted(above):
            probability = float(scores[label])
            run = self.open.get(label)
            if run is None:
                self.open[label] = Segment(low, high, label, probability, 1)
            else:
                run.end_s, run.windows = high, run.windows + 1
                run.probability_sum += probability
        return final

    def _close(self, segment: Segment) -> list[Segment]:
        return [segment] if segment.length_s >= self.min_segment_s else []

    def finish(self) -> list[Segment]:
        """The segments still open when the video ends (reaching its last window's end)."""
        final = []
        for label in sorted(self.open):
            segment = self.open[label]
            segment.end_s = max(segment.end_s, self.last_end)
            final += self._close(segment)
        self.open = {}
        return final
