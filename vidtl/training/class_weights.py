"""Class weights of the cross-entropy: ``module.class_weights=balanced`` from the training
labels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from vidtl.core.errors import UserError

log = logging.getLogger(__name__)


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """Inverse class frequency of ``labels``, mean 1 (classes without a label get weight
    0)."""
    counts = torch.bincount(torch.tensor(list(labels), dtype=torch.long),
                            minlength=num_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp(min=1)), 0.0)
    log.info("class weights (balanced): min %.3f, max %.3f", weights.min(), weights.max())
    return weights.tolist()


def class_weights(weighting: str | None, train_labels: Callable[[], Sequence[int]],
                  num_classes: int) -> list[float] | None:
    """``module.class_weights``: ``None`` (unweighted) or ``balanced``
    (:func:`balanced_class_weights` of ``train_labels()``, read only then)."""
    if weighting is None:
        return None
    if weighting != "balanced":
        raise UserError(f"module.class_weights must be null or balanced, got {weighting!r}")
    return balanced_class_weights(train_labels(), num_classes)


def pos_weight_tensor(pos_weight: Sequence[float] | str | None, multilabel: bool,
                      num_classes: int) -> torch.Tensor | None:
    """``module.pos_weight`` (multi-label only) as a tensor: weights per class, or
    ``balanced`` before they are known (a module rebuilt from a checkpoint, whose state dict
    holds them: ones until it is loaded)."""
    if pos_weight is None:
        return None
    if not multilabel:
        raise UserError("module.pos_weight is for task=multilabel (binary cross-entropy); "
                        "single-label training weighs classes with module.class_weights")
    if isinstance(pos_weight, str):
        if pos_weight != "balanced":
            raise UserError(f"module.pos_weight must be null or balanced, got {pos_weight!r}")
        return torch.ones(num_classes)
    if len(pos_weight) != num_classes:
        raise ValueError(f"{len(pos_weight)} positive weights for {num_classes} classes")
    return torch.tensor([float(w) for w in pos_weight], dtype=torch.float32)


def label_counts(label_sets: Sequence[Sequence[int]], num_classes: int) -> torch.Tensor:
    """How many videos carry each class (multi-label: each of a video's labels counts)."""
    counts = torch.zeros(num_classes)
    for labels in label_sets:
        counts[list(labels)] += 1
    return counts


def balanced_multilabel_weights(label_sets: Sequence[Sequence[int]],
                                num_classes: int) -> list[float]:
    """``module.class_weights=balanced`` for multi-label data: inverse positive frequency of
    each class, mean 1 over the classes with a positive (classes without one get 0)."""
    counts = label_counts(label_sets, num_classes)
    present = counts > 0
    inverse = torch.where(present, 1.0 / counts.clamp(min=1), 0.0)
    weights = inverse * present.sum() / inverse.sum().clamp(min=1e-12)
    log.info("class weights (balanced, multi-label): min %.3f, max %.3f", weights.min(),
             weights.max())
    return weights.tolist()


def balanced_pos_weight(label_sets: Sequence[Sequence[int]], num_classes: int) -> list[float]:
    """``module.pos_weight=balanced``: each class's negatives over its positives in the
    training set (1 for a class without a positive), as torch's BCE ``pos_weight`` expects."""
    counts = label_counts(label_sets, num_classes)
    negatives = len(label_sets) - counts
    weights = torch.where(counts > 0, negatives / counts.clamp(min=1), 1.0)
    log.info("positive weights (balanced): min %.3f, max %.3f", weights.min(), weights.max())
    return weights.tolist()
