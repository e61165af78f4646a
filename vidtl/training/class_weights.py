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
