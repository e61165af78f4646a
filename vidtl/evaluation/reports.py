"""The files of a test run: predictions, per-class accuracy and the confusion matrix.

Each file is written under a temporary name and renamed when complete, so an interrupted run
never leaves a half-written report. W&B (when it is one of the loggers) receives the confusion
matrix as an image and the per-class results as a table.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidtl.core.atomic import atomic_path
from vidtl.data.annotations.records import VideoRecord
from vidtl.evaluation.detection_reports import (
    positive_probabilities,
    write_detection_reports,
    write_multilabel_reports,
)
from vidtl.evaluation.video_results import VideoResults

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"
PER_CLASS = "per_class.csv"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"


def write_predictions(path: Path, results: VideoResults, class_names: Sequence[str],
                      records: Sequence[VideoRecord], top_k: int = 5,
                      detector: tuple[int, float, np.ndarray] | None = None) -> None:
    """One row per video: ``video, label, predicted, correct`` and the ``top_k`` classes with
    their scores (probabilities with the default softmax aggregation); for a ``detector``
    (positive class, threshold, each video's probability of it), then
    ``<class>_probability`` and ``detected`` (1 at or above the threshold: the alarm)."""
    k = min(top_k, len(class_names))
    header = ["video", "label", "predicted", "correct"]
    for i in range(1, k + 1):
        header += [f"top{i}", f"score{i}"]
    if detector is not None:
        header += [f"{class_names[detector[0]]}_probability", "detected"]
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        order = np.argsort(-results.scores, axis=1, kind="stable")[:, :k]
        for row, video in enumerate(results.videos.tolist()):
            label, best = int(results.labels[row]), order[row]
            line: list[Any] = [str(records[video].path), class_names[label],
                               class_names[best[0]], int(best[0] == label)]
            for c in best.tolist():
                line += [class_names[c], f"{results.scores[row, c]:.6f}"]
            if detector is not None:
                probability = float(detector[2][row])
                line += [f"{probability:.6f}", int(probability >= detector[1])]
            writer.writerow(line)


def write_per_class(path: Path, results: VideoResults, class_names: Sequence[str]) -> None:
    counts = results.confusion_matrix(len(class_names))
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["class", "videos", "correct", "accuracy"])
        for c, name in enumerate(class_names):
            total, correct = int(counts[c].sum()), int(counts[c, c])
            writer.writerow([name, total, correct, f"{correct / total:.6f}" if total else ""])


def write_confusion_csv(path: Path, counts: np.ndarray, class_names: Sequence[str]) -> None:
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, counts.tolist(), strict=True):
            writer.writerow([name, *row])


def plot_confusion_matrix(path: Path, counts: np.ndarray, class_names: Sequence[str]) -> None:
    """The row-normalised confusion matrix as a PNG (class names on the axes up to 60
    classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_classes = len(class_names)
    totals = counts.sum(1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(40.0, max(5.0, 0.3 * num_classes + 2))
    figure, axes = plt.subplots(figsize=(side + 1.5, side))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if num_classes <= 60:
        axes.set_xticks(range(num_classes), class_names, rotation=90,
                        fontsize=max(4, 10 - num_classes // 10))
        axes.set_yticks(range(num_classes), class_names, fontsize=max(4, 10 - num_classes // 10))
    if num_classes <= 20:
        for true, predicted in zip(*np.nonzero(counts), strict=True):
            axes.text(predicted, true, str(counts[true, predicted]), ha="center", va="center",
                      color="white" if rates[true, predicted] > 0.5 else "black", fontsize=8)
    accuracy = np.trace(counts) / max(1, counts.sum())
    axes.set_title(f"{int(counts.sum())} videos, top-1 {accuracy:.3f}")
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=100)
    plt.close(figure)


def write_test_reports(output_dir: Path, results: VideoResults, class_names: Sequence[str],
                       records: Sequence[VideoRecord], loggers: Sequence[Any] = (),
                       prefix: str = "test", thresholds: np.ndarray | None = None,
                       positive: int | None = None,
                       scores_are_logits: bool = False) -> dict[str, Path]:
    """Write the reports of ``results`` into ``output_dir`` and send them to W&B; return the
    paths written. A multi-label model's (``thresholds`` per class) are those of
    :func:`~vidtl.evaluation.detection_reports.write_multilabel_reports`; a detector of class
    ``positive`` (one threshold) adds :func:`~vidtl.evaluation.detection_reports.
    write_detection_reports` (``scores_are_logits``: ``view_aggregation=logits``)."""
    if results.multilabel:
        if thresholds is None:
            raise ValueError("a multi-label test's reports need its thresholds")
        return write_multilabel_reports(output_dir, results, class_names, records, thresholds,
                                        loggers, prefix)
    detector = None
    if positive is not None and thresholds is not None:
        detector = (positive, float(thresholds[0]),
                    positive_probabilities(results, positive, scores_are_logits))
    written = _single_label_reports(output_dir, results, class_names, records, loggers, prefix,
                                    detector)
    if detector is not None and len(results):
        written |= write_detection_reports(output_dir, results, class_names, positive,
                                           float(thresholds[0]), loggers, prefix,
                                           scores_are_logits)
    return written


def _single_label_reports(output_dir: Path, results: VideoResults, class_names: Sequence[str],
                          records: Sequence[VideoRecord], loggers: Sequence[Any],
                          prefix: str, detector: tuple[int, float, np.ndarray] | None
                          ) -> dict[str, Path]:
    counts = results.confusion_matrix(len(class_names))
    paths = {
        "predictions": output_dir / PREDICTIONS,
        "per_class": output_dir / PER_CLASS,
        "confusion_csv": output_dir / CONFUSION_CSV,
        "confusion_png": output_dir / CONFUSION_PNG,
    }
    write_predictions(paths["predictions"], results, class_names, records, detector=detector)
    write_per_class(paths["per_class"], results, class_names)
    write_confusion_csv(paths["confusion_csv"], counts, class_names)
    plot_confusion_matrix(paths["confusion_png"], counts, class_names)
    per_class = results.per_class_accuracy(len(class_names))
    for logger in loggers:
        if type(logger).__name__ != "WandbLogger":
            continue
        logger.log_image(key=f"{prefix}/confusion_matrix", images=[str(paths["confusion_png"])])
        rows = [[name, int(counts[c].sum()), int(counts[c, c]),
                 None if math.isnan(per_class[c]) else float(per_class[c])]
                for c, name in enumerate(class_names)]
        logger.log_table(key=f"{prefix}/per_class", columns=["class", "videos", "correct",
                                                             "accuracy"], data=rows)
    log.info("test reports: %s", ", ".join(str(p) for p in paths.values()))
    return paths
