"""Mean class accuracy: the mean, over the classes that have samples in the evaluated split, of
each class's top-1 accuracy (its recall). The one definition behind every ``mean_class_acc``
vidtl writes (``val/``, ``test/clip_``, ``test/``, ``per_class.csv``'s mean)."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class MeanClassAccuracy(Metric):
    """Per-class correct and total counts (summed across processes); :meth:`compute` averages
    ``correct / total`` over the classes with ``total > 0``. A class that is only predicted
    (no sample of it in the split) does not count, unlike torchmetrics' ``average="macro"``,
    which counts it as 0. NaN before any sample."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("correct", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        """``scores`` (N, C) logits or probabilities, ``labels`` (N,) class indices."""
        labels = labels.long()
        hits = scores.argmax(1) == labels
        # bincount without weights: deterministic on CUDA (trainer.deterministic=true)
        self.total += torch.bincount(labels, minlength=self.num_classes)
        self.correct += torch.bincount(labels[hits], minlength=self.num_classes)

    def compute(self) -> torch.Tensor:
        present = self.total > 0
        if not present.any():
            return torch.tensor(float("nan"))
        return (self.correct[present].double() / self.total[present].double()).mean().float()
