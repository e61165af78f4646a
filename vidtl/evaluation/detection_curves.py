"""Precision-recall and ROC curves as PNG files, the area in the legend and the operating point
(the chosen threshold) marked. Each file is written under a temporary name and renamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidtl.core.atomic import atomic_path


def _curve(x: Any, y: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float64 arrays of one length (at least one point), else a ``ValueError``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"{names[0]} {x.shape} and {names[1]} {y.shape} must be 1-D arrays of "
                         f"one length (at least one point)")
    return x, y


def _save(path: str | Path, figure: Any, axes: Any, title: str, legend: str) -> None:
    """Axes limits, legend and title; the PNG written atomically; the figure closed."""
    import matplotlib.pyplot as plt

    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc=legend)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=100)
    plt.close(figure)


def plot_pr_curve(path: str | Path, precision: Any, recall: Any,
                  operating_point: tuple[float, float] | None = None, title: str = "") -> None:
    """The precision-recall curve of :func:`~vidtl.evaluation.ranking_metrics.
    precision_recall_curve` as a step plot, its average precision in the legend and
    ``operating_point`` ``(precision, recall)`` marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall, precision = _curve(recall, precision, ("recall", "precision"))
    area = max(0.0, -float(np.sum(np.diff(recall) * precision[:-1])))
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot(recall, precision, drawstyle="steps-post", label=f"AP = {area:.3f}")
    if operating_point is not None:
        p, r = operating_point
        axes.plot([r], [p], "o", color="tab:red", label=f"threshold: P {p:.3f}, R {r:.3f}")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    _save(path, figure, axes, title, "lower left")


def plot_roc_curve(path: str | Path, fpr: Any, tpr: Any,
                   operating_point: tuple[float, float] | None = None, title: str = "") -> None:
    """The ROC curve of :func:`~vidtl.evaluation.ranking_metrics.roc_curve`, its area in the
    legend, the chance diagonal and ``operating_point`` ``(fpr, tpr)`` marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = _curve(fpr, tpr, ("fpr", "tpr"))
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot(fpr, tpr, label=f"AUC = {area:.3f}")
    axes.plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8, label="chance")
    if operating_point is not None:
        f, t = operating_point
        axes.plot([f], [t], "o", color="tab:red", label=f"threshold: FPR {f:.3f}, TPR {t:.3f}")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    _save(path, figure, axes, title, "lower right")
