"""A LightningModule subclass with an option and a parameter of its own."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vidtl.training.module import VideoClassificationModule


class ScaledLogitsModule(VideoClassificationModule):
    """vidtl's module with a learned temperature: the logits are multiplied by
    ``exp(log_scale)``, a parameter that starts at ``log(init_scale)`` and trains with the head.

    Everything else (multi-view testing, reports, checkpoints, resume, batch mixing) is
    inherited; ``vidtl.load``, vidtl-eval, -predict, -extract and -export rebuild this class
    with its option and parameter from the checkpoint.
    """

    def __init__(self, *args: Any, init_scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def forward_clips(self, clips: torch.Tensor) -> torch.Tensor:
        return super().forward_clips(clips) * self.log_scale.exp()

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """The same for cached frame features (``feature_cache.enabled``)."""
        return super().forward_features(features) * self.log_scale.exp()

    def configure_param_groups(self) -> list[dict[str, Any]]:
        groups = super().configure_param_groups()
        return [*groups, {"name": "log_scale", "params": [self.log_scale], "lr_scale": 1.0}]
