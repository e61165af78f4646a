"""Per-class operating points chosen on validation scores (``eval.threshold``).

A prediction is ``score >= threshold``; a chosen threshold is always one of the class's
distinct scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidtl.core.errors import UserError
from vidtl.evaluation.ranking_metrics import binary_inputs, multilabel_inputs, threshold_counts

THRESHOLD_RULES = """\
eval.threshold, the rule that picks each class's threshold on the validation scores:
  f1           the threshold with the highest F1 (ties: the highest such threshold)
  precision@P  the lowest threshold whose precision >= P, 0 < P <= 1 (the most recall at that
               precision); if none reaches P, the one with the highest precision (ties: lowest)
  recall@R     the highest threshold whose recall >= R, 0 < R <= 1
  fixed        eval.fixed_threshold for every class
A class without a positive (for precision@P also one without a negative) keeps the fixed
threshold."""

ACCEPTED = ("f1, fixed, precision@P or recall@R with P, R in (0, 1] (e.g. precision@0.9, "
            "recall@0.95)")
KINDS = ("f1", "precision", "recall", "fixed")
_TARGETED = re.compile(r"(precision|recall)@([0-9]*\.?[0-9]+)")


@dataclass(frozen=True)
class ThresholdRule:
    """``kind`` in ``f1``, ``precision``, ``recall``, ``fixed``; ``target`` in (0, 1] for
    ``precision`` and ``recall``, else None."""

    kind: str
    target: float | None = None

    def __post_init__(self) -> None:
        """Refuse an unknown kind or a missing or out-of-range target."""
        targeted = self.kind in ("precision", "recall")
        if self.kind not in KINDS or targeted != (self.target is not None) or (
                targeted and not 0.0 < float(self.target or 0.0) <= 1.0):
            raise UserError(f"eval.threshold: expected {ACCEPTED}, got kind={self.kind!r}, "
                            f"target={self.target!r}")

    def __str__(self) -> str:
        """The ``eval.threshold`` text of the rule (``precision@0.9``)."""
        return self.kind if self.target is None else f"{self.kind}@{self.target:g}"


def parse_threshold_rule(rule: str) -> ThresholdRule:
    """The :class:`ThresholdRule` of ``f1``, ``fixed``, ``precision@P`` or ``recall@R``; any
    other value raises a :class:`UserError` naming ``eval.threshold``."""
    if isinstance(rule, ThresholdRule):
        return rule
    if isinstance(rule, str):
        if rule in ("f1", "fixed"):
            return ThresholdRule(rule)
        match = _TARGETED.fullmatch(rule)
        if match and 0.0 < float(match.group(2)) <= 1.0:
            return ThresholdRule(match.group(1), float(match.group(2)))
    raise UserError(f"eval.threshold: expected {ACCEPTED}, got {rule!r}")


@dataclass(frozen=True, eq=False)
class ThresholdChoice:
    """``thresholds`` (K,) float32; ``unreached``: the classes whose precision target no
    threshold reaches (given their highest-precision threshold); ``kept_fixed``: the classes
    that kept the fixed threshold for want of a positive (or a negative, for precision)."""

    thresholds: np.ndarray
    unreached: list[int] = field(default_factory=list)
    kept_fixed: list[int] = field(default_factory=list)


def _choose(scores: np.ndarray, positives: np.ndarray, rule: ThresholdRule,
            fixed: float) -> tuple[float, str]:
    """The threshold of one class and how it was found: ``chosen``, ``unreached`` or
    ``fixed`` (kept the fixed threshold)."""
    count = positives.sum()
    if rule.kind == "fixed" or count == 0 or (rule.kind == "precision"
                                              and count == positives.size):
        return fixed, "chosen" if rule.kind == "fixed" else "fixed"
    thresholds, tps, fps = threshold_counts(scores, positives)
    if rule.kind == "f1":
        f1 = 2.0 * tps / (tps + fps + count)  # one division: equal F1s compare equal
        return float(thresholds[np.flatnonzero(f1 == f1.max())[0]]), "chosen"
    if rule.kind == "recall":  # the lowest threshold has recall 1 >= target
        return float(thresholds[np.flatnonzero(tps / count >= rule.target)[0]]), "chosen"
    precision = tps / (tps + fps)
    reached = np.flatnonzero(precision >= rule.target)
    if reached.size:
        return float(thresholds[reached[-1]]), "chosen"
    return float(thresholds[np.flatnonzero(precision == precision.max())[-1]]), "unreached"


def choose_threshold(scores: Any, positives: Any, rule: ThresholdRule | str,
                     fixed: float = 0.5) -> float:
    """The threshold of one class: ``scores`` (N,), ``positives`` (N,) 0/1; see
    :data:`THRESHOLD_RULES`."""
    scores, labels = binary_inputs(scores, positives)
    return _choose(scores, labels, parse_threshold_rule(rule), fixed)[0]


def _float32_at_most(value: float) -> np.float32:
    """The largest float32 not above ``value``: the scores at the threshold stay predicted."""
    low = np.float32(value)
    return np.nextafter(low, np.float32(-np.inf)) if float(low) > value else low


def threshold_choice(scores: Any, targets: Any, rule: ThresholdRule | str,
                     fixed: float = 0.5) -> ThresholdChoice:
    """The threshold of every class (``scores`` and ``targets`` (N, K)) with the classes whose
    target was unreachable and those that kept ``fixed``. A threshold taken from the scores is
    rounded down to float32; ``fixed`` is cast as it is."""
    scores, labels = multilabel_inputs(scores, targets)
    rule = parse_threshold_rule(rule)
    thresholds = np.empty(scores.shape[1], dtype=np.float32)
    unreached, kept_fixed = [], []
    for k in range(scores.shape[1]):
        value, how = _choose(scores[:, k], labels[:, k], rule, fixed)
        from_scores = rule.kind != "fixed" and how != "fixed"
        thresholds[k] = _float32_at_most(value) if from_scores else np.float32(value)
        if how == "unreached":
            unreached.append(k)
        elif how == "fixed":
            kept_fixed.append(k)
    return ThresholdChoice(thresholds, unreached, kept_fixed)


def choose_thresholds(scores: Any, targets: Any, rule: ThresholdRule | str,
                      fixed: float = 0.5) -> np.ndarray:
    """(K,) float32: the threshold of every class (see :func:`threshold_choice`)."""
    return threshold_choice(scores, targets, rule, fixed).thresholds
