"""The files of a test run of a model with operating points (thresholds chosen on validation).

- Multi-label: ``predictions.csv`` (each video's labels, the classes above their thresholds
  and its best scores) and ``per_class.csv`` (each class's positives, average precision,
  threshold, and precision, recall and F1 at it); no confusion matrix (a video has several
  labels).
- A single-label detector of one class: ``detection.csv`` (the operating point and its
  precision, recall, F1, ROC-AUC, PR-AUC), ``pr_curve.png`` and ``roc_curve.png`` with the
  operating point marked, beside the single-label reports.

Each file is written under a temporary name and renamed when complete; W&B (when it is one of
the loggers) gets the per-class table and the curves.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidtl.core.atomic import atomic_path
from vidtl.data.annotations.records import VideoRecord
from vidtl.evaluation.detection_curves import plot_pr_curve, plot_roc_curve
from vidtl.evaluation.ranking_metrics import (
    binary_detection_metrics,
    per_class_average_precision,
    precision_recall_curve,
    roc_curve,
)
from vidtl.evaluation.video_results import VideoResults

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.csv"
PER_CLASS = "per_class.csv"
DETECTION = "detection.csv"
PR_CURVE = "pr_curve.png"
ROC_CURVE = "roc_curve.png"


def _wandb_loggers(loggers: Sequence[Any]) -> list[Any]:
    return [logger for logger in loggers if type(logger).__name__ == "WandbLogger"]


def write_multilabel_predictions(path: Path, results: VideoResults, class_names: Sequence[str],
                                 records: Sequence[VideoRecord], thresholds: np.ndarray,
                                 top_k: int = 5) -> None:
    """One row per video: ``video, labels, predicted`` (``;``-joined class names: the true
    ones, and those whose score reaches their threshold) and the ``top_k`` best scores."""
    k = min(top_k, len(class_names))
    header = ["video", "labels", "predicted"]
    for i in range(1, k + 1):
        header += [f"top{i}", f"score{i}"]
    order = np.argsort(-results.scores, axis=1, kind="stable")[:, :k]
    above = results.scores >= thresholds[None, :]
    with atomic_path(path) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row, video in enumerate(results.videos.tolist()):
            line: list[Any] = [
                str(records[video].path),
                ";".join(class_names[c] for c in np.flatnonzero(results.labels[row] > 0.5)),
                ";".join(class_names[c] for c in np.flatnonzero(above[row]))]
            for c in order[row].tolist():
                line += [class_names[c], f"{results.scores[row, c]:.6f}"]
            writer.writerow(line)


def multilabel_class_rows(results: VideoResults, class_names: Sequence[str],
                          thresholds: np.ndarray) -> list[list[Any]]:
    """Per class: name, positives, average precision (empty without a positive), threshold,
    and precision, recall and F1 at the threshold."""
    targets = results.labels > 0.5
    ap = per_class_average_precision(results.scores, targets.astype(np.float32))
    predicted = results.scores >= thresholds[None, :]
    rows = []
    for c, name in enumerate(class_names):
        hits = int((predicted[:, c] & targets[:, c]).sum())
        said, positives = int(predicted[:, c].sum()), int(targets[:, c].sum())
        precision = hits / said if said else 0.0
        recall = hits / positives if positives else float("nan")
        f1 = 2 * hits / (said + positives) if said + positives else 0.0
        rows.append([name, positives, "" if np.isnan(ap[c]) else f"{ap[c]:.6f}",
                     f"{thresholds[c]:.6f}", f"{precision:.6f}",
                     "" if np.isnan(recall) else f"{recall:.6f}", f"{f1:.6f}"])
    return rows


def write_multilabel_reports(output_dir: Path, results: VideoResults,
                             class_names: Sequence[str], records: Sequence[VideoRecord],
                             thresholds: np.ndarray, loggers: Sequence[Any] = (),
                             prefix: str = "test") -> dict[str, Path]:
    """``predictions.csv`` and ``per_class.csv`` of a multi-label test; the per-class table to
    W&B. Returns the paths written."""
    paths = {"predictions": output_dir / PREDICTIONS, "per_class": output_dir / PER_CLASS}
    write_multilabel_predictions(paths["predictions"], results, class_names, records,
                                 thresholds)
    columns = ["class", "positives", "average_precision", "threshold", "precision", "recall",
               "f1"]
    rows = multilabel_class_rows(results, class_names, thresholds)
    with atomic_path(paths["per_class"]) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(rows)
    for logger in _wandb_loggers(loggers):
        logger.log_table(key=f"{prefix}/per_class", columns=columns, data=rows)
    log.info("test reports: %s", ", ".join(str(p) for p in paths.values()))
    return paths


def positive_probabilities(results: VideoResults, positive: int,
                           scores_are_logits: bool = False) -> np.ndarray:
    """Each video's probability of class ``positive`` (float64): its score, or, when the
    scores are mean logits (``view_aggregation=logits``), its softmax probability."""
    scores = results.scores.astype(np.float64)
    if scores_are_logits:
        scores = np.exp(scores - scores.max(1, keepdims=True))
        scores /= scores.sum(1, keepdims=True)
    return scores[:, positive]


def write_detection_reports(output_dir: Path, results: VideoResults,
                            class_names: Sequence[str], positive: int, threshold: float,
                            loggers: Sequence[Any] = (), prefix: str = "test",
                            scores_are_logits: bool = False) -> dict[str, Path]:
    """The operating point (``detection.csv``) and the PR and ROC curves of a single-label
    model read as a detector of class ``positive``, on its softmax probability
    (``scores_are_logits``: the video scores are mean logits, turned into probabilities
    first); the curves to W&B."""
    scores = positive_probabilities(results, positive, scores_are_logits)
    positives = (results.labels == positive).astype(np.float64)
    found = binary_detection_metrics(scores, positives, threshold)
    paths = {"detection": output_dir / DETECTION, "pr_curve": output_dir / PR_CURVE,
             "roc_curve": output_dir / ROC_CURVE}
    with atomic_path(paths["detection"]) as partial, open(partial, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["positive_class", *found])
        writer.writerow([class_names[positive], *(f"{v:.6f}" if isinstance(v, float) else v
                                                  for v in found.values())])
    name = class_names[positive]
    written = {"detection": paths["detection"]}
    if positives.any():
        precision, recall, _ = precision_recall_curve(scores, positives)
        plot_pr_curve(paths["pr_curve"], precision, recall,
                      (found["precision"], found["recall"]),
                      f"{prefix}: {name}, {int(positives.sum())} of {len(scores)} videos "
                      f"positive")
        written["pr_curve"] = paths["pr_curve"]
    if positives.any() and not positives.all():
        fpr, tpr, _ = roc_curve(scores, positives)
        false_rate = float(((scores >= threshold) & (positives == 0)).sum()
                           / max(1, (positives == 0).sum()))
        plot_roc_curve(paths["roc_curve"], fpr, tpr, (false_rate, found["recall"]),
                       f"{prefix}: {name}, {int(positives.sum())} of {len(scores)} videos "
                       f"positive")
        written["roc_curve"] = paths["roc_curve"]
    for logger in _wandb_loggers(loggers):
        for key in ("pr_curve", "roc_curve"):
            if key in written:
                logger.log_image(key=f"{prefix}/{key}", images=[str(written[key])])
    log.info("detection reports (%s, threshold %.4f): %s", name, threshold,
             ", ".join(str(p) for p in written.values()))
    return written
