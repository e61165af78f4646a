"""A temporal module of the project's own: the mean and the maximum over time, side by side."""

from __future__ import annotations

import torch
from torch import nn


class MeanMaxPool(nn.Module):
    """``(B, T, D) -> (B, 2D)``: the temporal mean (TSN's consensus) next to the temporal
    maximum (a short event anywhere in the clip), layer-normalised.

    The contract vidtl asks of a temporal module: built as ``cls(in_features=D,
    num_frames=T)``, an ``out_features`` attribute, ``(B, T, D)`` in.
    """

    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = 2 * in_features
        self.norm = nn.LayerNorm(self.out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.mean(dim=1), features.amax(dim=1)], dim=-1)
        return self.norm(pooled)
