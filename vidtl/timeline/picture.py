"""One picture per video: class probabilities over time, and the segments below them.

Up to :data:`MAX_LINES` classes are drawn as lines; a model with more classes (UCF101's 101)
gets a heat map of the :data:`MAX_ROWS` classes that matter most in this video (those that
are ever on top first, then by their highest probability), so the picture stays readable.
"""

from __future__ import annotations

from pathlib import Path

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
    on_top = list(dict.fromkeys(probabilities.argmax(1).tolist()))
    on_top.sort(key=lambda c: -probabilities[:, c].max())
    rest = [int(c) for c in np.argsort(-probabilities.max(0)) if c not in on_top]
    return (on_top + rest)[:MAX_ROWS]


def draw_timeline(path: Path, video: str, starts: np.ndarray, ends: np.ndarray,
                  probabilities: np.ndarray, class_names: list[str],
                  segments: list[Segment]) -> Path:
    """Write the picture of one video's windows (``starts``/``ends`` in seconds,
    ``probabilities`` ``(windows, K)``) and ``segments`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_replaceable(path, _is_our_picture, "a timeline picture")
    shown = shown_classes(probabilities)
    centres = (starts + ends) / 2
    end = float(max(ends.max(), max((s.end_s for s in segments), default=0.0)))
    colours = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    colour = {c: colours(i % colours.N) for i, c in enumerate(shown)}
    figure, (top, strip) = plt.subplots(
        2, 1, figsize=(12, 3.2 + 0.22 * len(shown)), sharex=True,
        gridspec_kw={"height_ratios": [max(3, len(shown) * 0.35), 0.7]})
    if probabilities.shape[1] <= MAX_LINES:
        for c in shown:
            top.plot(centres, probabilities[:, c], color=colour[c], label=class_names[c], lw=1.5)
        top.set_ylim(0, 1.02)
        top.set_ylabel("probability")
        top.legend(loc="upper right", fontsize=8, ncol=min(4, len(shown)), framealpha=0.8)
    else:
        grid = probabilities[:, shown].T
        image = top.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                           vmin=0, vmax=1, extent=(float(starts.min()), end, len(shown) - 0.5,
                                                   -0.5))
        top.set_yticks(range(len(shown)), [class_names[c][:28] for c in shown], fontsize=8)
        figure.colorbar(image, ax=top, pad=0.01, label="probability")
    top.set_title(f"{Path(video).name if '://' not in video else video} - "
                  f"{len(starts)} windows, {len(segments)} segments", fontsize=10)
    for segment in segments:
        shade = colour.get(segment.label, "0.6")
        strip.axvspan(segment.start_s, segment.end_s, color=shade, alpha=0.85)
        if segment.length_s > end / 40:
            strip.text((segment.start_s + segment.end_s) / 2, 0.5,
                       class_names[segment.label][:20], ha="center", va="center", fontsize=7,
                       clip_on=True)
    strip.set_yticks([])
    strip.set_ylabel("segments", rotation=0, ha="right", va="center", fontsize=8)
    strip.set_xlim(0, end)
    strip.set_xlabel("time (s)")
    figure.tight_layout()
    with atomic_path(path, keep_suffix=True) as partial:
        figure.savefig(partial, dpi=100, metadata={"Software": SIGNATURE})
    plt.close(figure)
    return path
