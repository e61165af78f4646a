"""One picture per video: class probabilities over time, and the segments below them.

Up to :data:`MAX_LINES` classes are drawn as lines; a model with more classes (UCF101's 101)
gets a heat map of the :data:`MAX_ROWS` classes that matter most in this video (those that
are ever on top first, then by their highest probability), so the picture stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidtl.core.atomic import atomic_path
from vidtl.core.own_files import check_replaceable
from vidtl.core.safe_files import open_regular
from vidtl.timeline.segments import Segment

MAX_LINES = 8
MAX_ROWS = 12
SIGNATURE = "vidtl timeline"


def picture_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}_timeline.png"


def _is_our_picture(path: Path) -> bool:
    with open_regular(path) as file:
        return SIGNATURE.encode() in file.read(4096)


def shown_classes(probabilities: np.ndarray) -> list[int]:
    """The classes a picture shows for probabilities ``(windows, K)``, most relevant first."""
    if probabilities.shape[1] <= MAX_LINES:
        return list(range(probabilities.shape[1]))
    tops = probabilities.argmax(1)
    on_top = sorted(set(tops.tolist()), key=lambda c: -probabilities[:, c].max())[:MAX_ROWS]
    rest = [int(c) for c in np.argsort(-probabilities.max(0)) if c not in on_top]
    shown = (on_top + rest)[:MAX_ROWS]
    # in the order they first take the top (then the rest): the map reads left to right
    first = {c: int(np.argmax(tops == c)) if (tops == c).any() else len(tops) for c in shown}
    return sorted(shown, key=lambda c: (first[c], -probabilities[:, c].max()))


def draw_timeline(path: Path, video: str, starts: np.ndarray, ends: np.ndarray,
                  probabilities: np.ndarray, class_names: list[str],
                  segments: list[Segment], thresholds: np.ndarray | None = None) -> Path:
    """Write the picture of one video's windows (``starts``/``ends`` in seconds,
    ``probabilities`` ``(windows, K)``) and ``segments`` to ``path``; a model's per-class
    ``thresholds`` (multi-label, or a detector's) are dashed lines in the classes' colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    check_replaceable(path, _is_our_picture, "a timeline picture")
    shown = shown_classes(probabilities)
    centres = (starts + ends) / 2
    end = float(max(ends.max(), max((s.end_s for s in segments), default=0.0)))
    colours = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    colour = {c: colours(i % colours.N) for i, c in enumerate(shown)}
    figure, (top, strip) = plt.subplots(
        2, 1, figsize=(12, 3.2 + 0.22 * len(shown)), sharex=True, layout="constrained",
        gridspec_kw={"height_ratios": [max(3, len(shown) * 0.35), 0.7]})
    if probabilities.shape[1] <= MAX_LINES:
        for c in shown:
            top.plot(centres, probabilities[:, c], color=colour[c], label=class_names[c], lw=1.5)
            if thresholds is not None and np.isfinite(thresholds[c]):
                top.axhline(float(thresholds[c]), color=colour[c], lw=0.8, ls="--")
        top.set_ylim(0, 1.02)
        top.set_ylabel("probability")
        top.legend(loc="upper right", fontsize=8, ncol=min(4, len(shown)), framealpha=0.8)
    else:
        # each window's column spans the time it speaks for (half way to its neighbours)
        edges = np.concatenate([[starts.min()], (centres[1:] + centres[:-1]) / 2, [end]])
        image = top.pcolormesh(edges, np.arange(len(shown) + 1) - 0.5,
                               probabilities[:, shown].T, cmap="viridis", vmin=0, vmax=1)
        top.set_ylim(len(shown) - 0.5, -0.5)
        top.set_yticks(range(len(shown)), [class_names[c][:28] for c in shown], fontsize=8)
        top.tick_params(axis="y", pad=14)
        beside = blended_transform_factory(top.transAxes, top.transData)
        for row, c in enumerate(shown):  # each class's colour in the segments below
            top.text(-0.004, row, "\u25a0", transform=beside, color=colour[c], ha="right",
                     va="center", fontsize=11, clip_on=False)
        figure.colorbar(image, ax=[top, strip], pad=0.01, fraction=0.03, label="probability")
    others = " (grey: classes not drawn above)" if len(shown) < probabilities.shape[1] else ""
    if thresholds is not None and probabilities.shape[1] <= MAX_LINES:
        others += " (dashed: thresholds)"
    shown_name = Path(video).name if "://" not in video else video
    shown_name = shown_name.encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")  # a name's bytes that are not UTF-8, escaped
    top.set_title(f"{shown_name} - "
                  f"{len(starts)} windows, {len(segments)} segments{others}", fontsize=10)
    _draw_segments(strip, segments, colour, class_names, end)
    strip.set_yticks([])
    strip.set_ylabel("segments", rotation=0, ha="right", va="center", fontsize=8)
    strip.set_xlim(0, end)
    strip.set_xlabel("time (s)")
    with atomic_path(path, keep_suffix=True) as partial:
        figure.savefig(partial, dpi=100, metadata={"Software": SIGNATURE})
    plt.close(figure)
    return path


def _draw_segments(strip: Any, segments: list[Segment], colour: dict[int, Any],
                   class_names: list[str], end: float) -> None:
    """The segments as coloured spans (grey: a class not drawn above), named where it fits;
    segments that overlap (a multi-label model's) get one lane per class."""
    lanes = sorted({s.label for s in segments}, key=lambda c: min(
        s.start_s for s in segments if s.label == c))
    overlapping = any(a.label != b.label and a.start_s < b.end_s and b.start_s < a.end_s
                      for i, a in enumerate(segments) for b in segments[i + 1:i + 50])
    height = 1 / max(1, len(lanes)) if overlapping else 1.0
    for segment in segments:
        shade = colour.get(segment.label, "0.6")
        bottom = 1 - height * (lanes.index(segment.label) + 1) if overlapping else 0.0
        strip.axvspan(segment.start_s, segment.end_s, ymin=bottom, ymax=bottom + height,
                      color=shade, alpha=0.85)
        name = class_names[segment.label][:20]
        if segment.length_s > len(name) * end * 0.0055 and height >= 0.2:  # where it fits
            strip.text((segment.start_s + segment.end_s) / 2, bottom + height / 2,
                       name, ha="center", va="center", fontsize=7, clip_on=True)
