"""Detection-grade evaluation: per-class thresholds chosen on validation, and the metrics that
go with them.

Two kinds of model have operating points:

- a multi-label model (``task=multilabel``): one sigmoid score per class, a threshold per
  class; metrics mAP (the Charades protocol: the mean of the per-class average precisions over
  the classes with a positive), micro and macro F1 and micro precision and recall at the
  thresholds;
- a single-label model read as a detector of one positive class (a 2-class task, or
  ``eval.positive_class`` named): the softmax probability of that class, one threshold;
  metrics precision, recall and F1 at the threshold, ROC-AUC and PR-AUC (average precision).

The thresholds are chosen at the end of every validation epoch by ``eval.threshold``
(:mod:`vidtl.evaluation.thresholds`) and kept in the ``thresholds`` buffer, so each
checkpoint carries those of its own epoch, and test, predict and export apply them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from vidtl.core.errors import UserError
from vidtl.evaluation.ranking_metrics import (
    binary_detection_metrics,
    f1_scores,
    mean_average_precision,
)
from vidtl.evaluation.thresholds import parse_threshold_rule, threshold_choice
from vidtl.evaluation.view_scores import view_probabilities

log = logging.getLogger(__name__)

TASKS = ("single_label", "multilabel")


def check_task(task: object) -> str:
    """``module.task`` one of :data:`TASKS`, else a :class:`UserError` naming it."""
    if task not in TASKS:
        raise UserError(f"task must be one of {TASKS} (task=multilabel on the command line), "
                        f"got {task!r}")
    return str(task)


def multi_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float targets ``(B, K)``: multi-hot rows as they are, class indices ``(B,)`` one-hot."""
    if labels.ndim == 2:
        return labels.float()
    return nn.functional.one_hot(labels.long(), num_classes).float()


def positive_class_index(positive_class: str | int | None, class_names: list[str]
                         ) -> int | None:
    """The class a single-label model detects: the one ``eval.positive_class`` names, the
    second of a 2-class task when none is named, else ``None`` (no detection metrics)."""
    if positive_class is None:
        if len(class_names) != 2:
            return None
        log.info("a 2-class task, read as a detector of %r (the second class; "
                 "eval.positive_class names another)", str(class_names[1]))
        return 1
    names = [str(n) for n in class_names]
    if str(positive_class) not in names:
        raise UserError(f"eval.positive_class={positive_class!r} is not a class of this data "
                        f"(classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''})")
    return names.index(str(positive_class))


class DetectionScores(Metric):
    """The probabilities ``(N, K)`` and 0/1 targets ``(N, K)`` of an evaluation, gathered from
    every process."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("targets", [], dist_reduce_fx="cat")

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.scores.append(scores.detach().float())
        self.targets.append(targets.detach().float())

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        # a list of batches in one process; one tensor once synced from several
        if isinstance(self.scores, list) and not self.scores:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return (dim_zero_cat(self.scores).cpu().numpy(),
                dim_zero_cat(self.targets).cpu().numpy())


class OperatingPoints(nn.Module):
    """The thresholds of a multi-label model (one per class) or of a detector of class
    ``positive`` (one), chosen on validation by ``rule`` (``f1``, ``precision@P``,
    ``recall@R``, ``fixed``: ``fixed`` everywhere, also for a class without a validation
    positive)."""

    def __init__(self, num_classes: int, multilabel: bool, positive: int | None = None,
                 rule: str = "f1", fixed: float = 0.5) -> None:
        super().__init__()
        if not multilabel and positive is None:
            raise ValueError("a single-label model's operating point needs a positive class")
        if not 0.0 <= float(fixed) <= 1.0:
            raise UserError(f"eval.fixed_threshold must be a probability in [0, 1], got {fixed}")
        self.rule_text = str(rule)
        self.rule = parse_threshold_rule(self.rule_text)
        self.fixed = float(fixed)
        self.num_classes = num_classes
        self.multilabel = multilabel
        self.positive = positive
        size = num_classes if multilabel else 1
        self.register_buffer("thresholds", torch.full((size,), self.fixed))
        # the class a detector's threshold was chosen for (-1: multi-label), saved with it
        self.register_buffer("positive_index", torch.tensor(-1 if positive is None else positive))
        self.val_scores = DetectionScores()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              local_metadata: dict[str, Any], strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        """A checkpoint without thresholds (written before they existed) keeps the defaults,
        said once; thresholds chosen for another positive class than this module's (an
        ``eval.positive_class`` override) too; thresholds that are not floating-point
        probabilities (NaN, out of [0, 1], integers) are an error of the load."""
        key, index_key = prefix + "thresholds", prefix + "positive_index"
        if key not in state_dict:
            log.warning("the checkpoint holds no thresholds (written before vidtl stored them): "
                        "every class at eval.fixed_threshold=%g until a validation chooses "
                        "them", self.fixed)
        stored = state_dict.get(index_key, self.positive_index)
        if not isinstance(stored, torch.Tensor) or stored.numel() != 1 or stored.dtype not in (
                torch.int64, torch.int32):
            error_msgs.append(f"{index_key} must be one whole number")
            return
        if int(stored) != int(self.positive_index):
            log.warning("the checkpoint's threshold was chosen for another positive class: "
                        "eval.fixed_threshold=%g until a validation chooses it", self.fixed)
            state_dict[key] = self.thresholds.detach().clone()
            state_dict[index_key] = self.positive_index.detach().clone()
        state_dict.setdefault(key, self.thresholds.detach().clone())
        state_dict.setdefault(index_key, self.positive_index.detach().clone())
        given = state_dict[key]
        if not isinstance(given, torch.Tensor) or given.dtype not in (
                torch.float16, torch.bfloat16, torch.float32, torch.float64) or not bool(
                ((given >= 0) & (given <= 1)).all()):
            error_msgs.append(f"{key} must hold floating-point probabilities in [0, 1]")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def detection_inputs(self, logits: torch.Tensor, labels: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and 0/1 targets ``(B, K)`` (``(B, 1)`` for a detector) of a batch."""
        if self.multilabel:
            return view_probabilities(logits, True), multi_hot(labels, self.num_classes)
        return self.video_inputs(view_probabilities(logits), labels)

    def video_inputs(self, probabilities: torch.Tensor, labels: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same from probabilities ``(B, K)`` (videos' aggregated scores)."""
        if self.multilabel:
            return probabilities.float(), multi_hot(labels, self.num_classes)
        positive = int(self.positive or 0)
        return (probabilities[:, positive:positive + 1].float(),
                (labels.reshape(-1, 1) == positive).float())

    def choose(self, scores: np.ndarray, targets: np.ndarray) -> None:
        """New thresholds from validation scores and targets, by the rule."""
        if len(scores) == 0:
            return
        choice = threshold_choice(scores, targets, self.rule, self.fixed)
        self.thresholds.copy_(torch.as_tensor(choice.thresholds, dtype=torch.float32))
        if choice.unreached:
            log.info("eval.threshold=%s: no threshold reaches the precision for %d of %d "
                     "classes (they take their best precision)", self.rule_text,
                     len(choice.unreached), len(choice.thresholds))
        if choice.kept_fixed and self.rule.kind != "fixed":
            log.info("eval.threshold: %d of %d classes have no validation positive (or no "
                     "negative) and keep eval.fixed_threshold=%g", len(choice.kept_fixed),
                     len(choice.thresholds), self.fixed)

    def metrics(self, scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """The metrics of scores and targets at the current thresholds."""
        if len(scores) == 0:
            return {}
        thresholds = self.thresholds.detach().cpu().numpy()
        if self.multilabel:
            return {"mAP": mean_average_precision(scores, targets),
                    **f1_scores(scores, targets, thresholds)}
        found = binary_detection_metrics(scores[:, 0], targets[:, 0], float(thresholds[0]))
        return {k: float(v) for k, v in found.items() if k not in ("positives", "negatives")}

    def finish_validation(self) -> dict[str, float]:
        """At a validation epoch's end: thresholds chosen on the epoch's scores, and the
        metrics there (the scores are then cleared)."""
        scores, targets = self.val_scores.compute()
        self.val_scores.reset()
        self.choose(scores, targets)
        return self.metrics(scores, targets)


def operating_points_for(task: str, class_names: list[str], rule: str = "f1",
                         fixed: float = 0.5, positive_class: str | int | None = None
                         ) -> OperatingPoints | None:
    """The operating points of a model of ``task``: per class for ``multilabel``, for the
    positive class of a single-label detector (:func:`positive_class_index`), else ``None``."""
    multilabel = task == "multilabel"
    positive = None if multilabel else positive_class_index(positive_class, class_names)
    if not multilabel and positive is None:
        return None
    return OperatingPoints(len(class_names), multilabel, positive, rule, fixed)


def report_options(module: Any) -> dict[str, Any]:
    """What the test reports need of a module's operating points: its ``thresholds``, the
    ``positive`` class of a detector, and whether its video scores are raw logits
    (``view_aggregation=logits``, turned into probabilities for the detection reports);
    nothing for a module without them."""
    points = getattr(module, "operating_points", None)
    if points is None:
        return {}
    return {"thresholds": points.thresholds.detach().cpu().numpy(), "positive": points.positive,
            "scores_are_logits": not points.multilabel and module.view_aggregation == "logits"}


def detected_classes(points: OperatingPoints | None, probabilities: torch.Tensor
                     ) -> list[tuple[int, float]]:
    """The classes of one video's probabilities ``(K,)`` that reach their thresholds, most
    probable first, with their probabilities: every such class of a multi-label model, the
    positive class of a detector when it does; none for a model without operating points."""
    if points is None:
        return []
    scores = probabilities.detach().float().cpu()
    thresholds = points.thresholds.detach().float().cpu()
    if points.multilabel:
        found = torch.nonzero(scores >= thresholds).reshape(-1).tolist()
    else:
        positive = int(points.positive or 0)
        found = [positive] if scores[positive] >= thresholds[0] else []
    return sorted(((c, round(float(scores[c]), 6)) for c in found), key=lambda item: -item[1])


def class_thresholds(points: OperatingPoints | None) -> torch.Tensor | None:
    """Per-class thresholds ``(K,)`` for the timeline's segments: a multi-label model's, or a
    detector's (its positive class's threshold, the other classes ``inf``: never reached);
    ``None`` for a model without operating points."""
    if points is None:
        return None
    if points.multilabel:
        return points.thresholds.detach().cpu().clone()
    found = torch.full((points.num_classes,), float("inf"))
    found[int(points.positive or 0)] = float(points.thresholds[0])
    return found


def describe_operating_points(points: OperatingPoints | None, task: str,
                              class_names: list[str]) -> dict[str, Any]:
    """What an exported model's description says of its scores: ``task`` (a multi-label
    model's logits go through a sigmoid per class, a single-label one's through a softmax) and
    the thresholds chosen on validation (``thresholds`` per class, or a detector's
    ``positive_class`` and ``threshold``)."""
    found: dict[str, Any] = {"task": task}
    if points is None:
        return found
    values = [float(t) for t in points.thresholds.detach().cpu().tolist()]  # exact
    rule = {"threshold_rule": points.rule_text}
    if points.multilabel:
        return found | rule | {"thresholds": dict(zip(class_names, values, strict=True))}
    return found | rule | {"positive_class": class_names[int(points.positive or 0)],
                           "threshold": values[0]}
