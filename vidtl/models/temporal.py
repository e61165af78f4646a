"""Temporal modules: combine per-frame features ``(B, T, D)`` into one clip feature ``(B, D')``.

A temporal module is any ``nn.Module`` with that contract and an ``out_features`` attribute,
constructed as ``cls(in_features=D, num_frames=T, **options)``. Configs reach one by
``_target_`` (with ``_partial_: true``), so new modules need no change to vidtl.
"""

from __future__ import annotations

import torch
from torch import nn


class AvgPool(nn.Module):
    """TSN's consensus: the mean over time (order-blind)."""

    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=1)


class MaxPool(nn.Module):
    """The maximum over time of each feature (order-blind)."""

    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.amax(dim=1)
