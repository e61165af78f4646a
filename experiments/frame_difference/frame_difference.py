"""A temporal module defined outside vidtl: average features plus average frame differences.

``(B, T, D) -> (B, 2D)``: the mean over time (what TSN sees) concatenated with the mean of
``x[t+1] - x[t]`` (which changes sign when the clip plays backwards, so it is order-aware).
vidtl reaches it through ``_target_`` in ``model/temporal/frame_difference.yaml`` beside it.
"""

from __future__ import annotations

import torch
from torch import nn


class FrameDifferencePool(nn.Module):
    def __init__(self, in_features: int, num_frames: int | None = None) -> None:
        super().__init__()
        self.out_features = 2 * in_features
        self.norm = nn.LayerNorm(2 * in_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = features.mean(dim=1)
        if features.shape[1] > 1:
            motion = (features[:, 1:] - features[:, :-1]).mean(dim=1)
        else:
            motion = torch.zeros_like(mean)
        return self.norm(torch.cat([mean, motion], dim=-1))
