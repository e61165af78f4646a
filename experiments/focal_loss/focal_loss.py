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
    """Cross-entropy scaled by ``(1 - p_true) ** gamma``: easy, well-classified clips count
    less, so rare and hard classes count more. ``gamma=0`` is cross-entropy."""

    def __init__(self, *args: Any, gamma: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gamma = gamma

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits.float(), dim=-1)
        log_p_true = log_probs.gather(1, labels[:, None]).squeeze(1)
        loss = -((1 - log_p_true.exp()) ** self.gamma) * log_p_true
        if self.class_weights is not None:
            weights = self.class_weights[labels]
            return (weights * loss).sum() / weights.sum()
        return loss.mean()
