"""Ranking and detection metrics in plain numpy (float64 inside), defined as scikit-learn
defines them: precision-recall and ROC curves, average precision, ROC AUC, the Charades mAP
and micro/macro F1 at per-class thresholds.

A prediction is ``score >= threshold``. Tied scores form one threshold (one point of a curve).
Bad arrays (shapes that disagree, NaN or infinite scores, targets other than 0/1) raise a
``ValueError`` that says what was wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _zero_one(values: Any, name: str) -> np.ndarray:
    """``values`` as float64 0/1 (bools accepted), else a ``ValueError`` naming ``name``."""
    array = np.asarray(values)
    if array.dtype == bool:
        return array.astype(np.float64)
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold 0/1 values, got dtype {array.dtype}") from None
    if not np.isin(array, (0.0, 1.0)).all():
        bad = array[~np.isin(array, (0.0, 1.0))]
        raise ValueError(f"{name} must hold 0/1 values, got {bad[:3].tolist()}")
    return array


def _finite_scores(values: Any, ndim: int) -> np.ndarray:
    """``values`` as a non-empty ``ndim``-D float64 array of finite numbers."""
    try:
        scores = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("scores must be numbers") from None
    if scores.ndim != ndim:
        raise ValueError(f"scores must be {ndim}-D, got shape {scores.shape}")
    if scores.size == 0:
        raise ValueError(f"scores is empty (shape {scores.shape}): at least one sample needed")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite "
                         f"values; every score must be finite")
    return scores


def binary_inputs(scores: Any, positives: Any) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` (N,) finite float64 and ``positives`` (N,) 0/1 float64."""
    scores = _finite_scores(scores, 1)
    labels = _zero_one(positives, "positives")
    if labels.shape != scores.shape:
        raise ValueError(f"positives have shape {labels.shape} but scores {scores.shape}")
    return scores, labels


def multilabel_inputs(scores: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` (N, K) finite float64 and ``targets`` (N, K) 0/1 float64."""
    scores = _finite_scores(scores, 2)
    labels = _zero_one(targets, "targets")
    if labels.shape != scores.shape:
        raise ValueError(f"targets have shape {labels.shape} but scores {scores.shape}")
    return scores, labels


def threshold_counts(scores: Any, positives: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, tps, fps)``: the distinct scores in decreasing order and the true and
    false positives counted at each (``score >= threshold``), as float64."""
    scores, labels = binary_inputs(scores, positives)
    order = np.argsort(scores, kind="stable")[::-1]
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(labels)[last]
    fps = 1.0 + last - tps
    return scores[last], tps, fps


def precision_recall_curve(scores: Any, positives: Any
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` as sklearn's (``drop_intermediate=False``):
    thresholds increasing, then a final point ``precision 1, recall 0``; recall is 1
    everywhere when there is no positive."""
    thresholds, tps, fps = threshold_counts(scores, positives)
    precision = tps / (tps + fps)  # tps + fps >= 1 at every threshold
    recall = tps / tps[-1] if tps[-1] > 0 else np.ones_like(tps)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(scores: Any, positives: Any) -> float:
    """sklearn's ``average_precision_score``: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct
    thresholds; NaN when there is no positive."""
    scores, labels = binary_inputs(scores, positives)
    if not labels.any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(scores, labels)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def roc_curve(scores: Any, positives: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` as sklearn's with ``drop_intermediate=False``: starts at
    ``(0, 0)`` with threshold ``inf``; fpr (tpr) is all NaN without a negative (positive)."""
    thresholds, tps, fps = threshold_counts(scores, positives)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_auc(scores: Any, positives: Any) -> float:
    """sklearn's ``roc_auc_score`` (trapezoids; a tie between a positive and a negative counts
    one half), summed in whole counts and divided once; NaN when only one class is present."""
    _, tps, fps = threshold_counts(scores, positives)
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    doubled = np.sum(np.diff(fps) * (tps[1:] + tps[:-1]))
    return float(doubled / (2.0 * tps[-1] * fps[-1]))


def per_class_average_precision(scores: Any, targets: Any) -> np.ndarray:
    """(K,) float64: the average precision of each column; NaN for a class without a
    positive."""
    scores, labels = multilabel_inputs(scores, targets)
    return np.array([average_precision(scores[:, k], labels[:, k])
                     for k in range(scores.shape[1])], dtype=np.float64)


def mean_average_precision(scores: Any, targets: Any) -> float:
    """The Charades protocol: the mean of the per-class average precision over the classes
    with at least one positive (the others are dropped); NaN when no class has one."""
    per_class = per_class_average_precision(scores, targets)
    kept = per_class[~np.isnan(per_class)]
    return float(kept.mean()) if kept.size else float("nan")


def _ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator`` with 0 where the denominator is 0 (``zero_division=0``)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def f1_scores(scores: Any, targets: Any, thresholds: Any) -> dict[str, float]:
    """``f1_micro``, ``f1_macro``, ``precision_micro``, ``recall_micro`` of the predictions
    ``scores >= thresholds`` (one threshold per class), as sklearn's ``f1_score``,
    ``precision_score`` and ``recall_score`` with ``zero_division=0``: ``f1_macro`` averages
    over ALL K classes, a class never present nor predicted counting 0."""
    scores, labels = multilabel_inputs(scores, targets)
    limits = np.asarray(thresholds, dtype=np.float64)
    if limits.shape != (scores.shape[1],):
        raise ValueError(f"thresholds must have shape ({scores.shape[1]},), got {limits.shape}")
    if np.isnan(limits).any():
        raise ValueError("thresholds hold NaN")
    predicted = (scores >= limits).astype(np.float64)
    tp = (predicted * labels).sum(0)
    fp = (predicted * (1.0 - labels)).sum(0)
    fn = ((1.0 - predicted) * labels).sum(0)
    per_class = _ratio(2.0 * tp, 2.0 * tp + fp + fn)
    return {
        "f1_micro": float(_ratio(2.0 * tp.sum(), 2.0 * tp.sum() + fp.sum() + fn.sum())),
        "f1_macro": float(per_class.mean()),
        "precision_micro": float(_ratio(tp.sum(), tp.sum() + fp.sum())),
        "recall_micro": float(_ratio(tp.sum(), tp.sum() + fn.sum())),
    }


def binary_detection_metrics(scores: Any, positives: Any, threshold: float) -> dict[str, float]:
    """``precision``, ``recall``, ``f1`` of ``scores >= threshold`` (0 where undefined),
    ``roc_auc``, ``pr_auc`` (the average precision; both NaN where undefined), ``threshold``
    and the ``positives`` and ``negatives`` counts."""
    scores, labels = binary_inputs(scores, positives)
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    predicted = scores >= threshold
    tp = float(labels[predicted].sum())
    fp = float(predicted.sum()) - tp
    fn = float(labels.sum()) - tp
    return {
        "precision": float(_ratio(tp, tp + fp)),
        "recall": float(_ratio(tp, tp + fn)),
        "f1": float(_ratio(2.0 * tp, 2.0 * tp + fp + fn)),
        "roc_auc": roc_auc(scores, labels),
        "pr_auc": average_precision(scores, labels),
        "threshold": float(threshold),
        "positives": int(labels.sum()),
        "negatives": int(labels.size - labels.sum()),
    }
