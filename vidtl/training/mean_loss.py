"""The mean loss over the clips an evaluation saw, gathered exactly from every process.

Lightning's mean of logged values keeps its clip count as an integer and, under gloo, divides
it by the number of processes in place: with uneven shares (8 and 7 clips) the count becomes
7 and the loss 15/14 of the truth. torchmetrics' ``MeanMetric`` drops NaN losses by default
and ignores the weights when told to keep them. :class:`MeanLoss` keeps two float sums.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class MeanLoss(Metric):
    """Weighted mean of losses: ``update(loss, clips)``; NaN stays NaN."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("clips", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, loss: torch.Tensor, clips: int) -> None:
        self.total += loss.detach().double() * clips
        self.clips += clips

    def compute(self) -> torch.Tensor:
        return (self.total / self.clips).float()
