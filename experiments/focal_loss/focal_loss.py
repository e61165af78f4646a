"""A LightningModule of vidtl's with another loss: focal loss for imbalanced data.

Subclassing :class:`~vidtl.training.module.VideoClassificationModule` and overriding one small
step (:meth:`compute_loss`) is all it takes; the config ``module/focal.yaml`` reaches the class
by ``_target_``. Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from vidtl.training.module import VideoClassificationModule


class FocalLossModule(VideoClassificationModule):
    """Cross-entropy scaled by ``(1 - p) ** gamma`` for each class's share of the target: easy,
    well-classified clips count less, so rare and hard classes count more. ``gamma=0`` is
    cross-entropy. Like vidtl's loss it takes class indices or soft targets (Mixup, CutMix),
    with label smoothing and class weights."""

    def __init__(self, *args: Any, gamma: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gamma = gamma

    def compute_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[-1]
        if targets.ndim == 1:  # class indices
            targets = F.one_hot(targets, num_classes).to(logits.dtype)
        targets = targets * (1 - self.label_smoothing) + self.label_smoothing / num_classes
        log_probs = F.log_softmax(logits.float(), dim=-1)
        loss = -(targets * (1 - log_probs.exp()) ** self.gamma * log_probs).sum(-1)
        if self.class_weights is not None:
            weights = targets @ self.class_weights  # each clip's share of each class's weight
            return (weights * loss).sum() / weights.sum()
        return loss.mean()
