"""The mean loss over the clips an evaluation saw, gathered exactly from every process.

Lightning's mean of logged values keeps its clip count as an integer and, under gloo, divides
it by the number of processes in place: with uneven shares (8 and 7 clips) the count becomes
7 and the loss 15/14 of the truth. torchmetrics' ``MeanMetric`` drops NaN losses by default
and ignores the weights when told to keep them. :class:`MeanLoss` keeps two float sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import Module
from torchmetrics import Metric


class MeanLoss(Metric):
    """Weighted mean of losses: ``update(loss, clips)`` (a loss of any shape counts as its
    mean); NaN stays NaN. The sums stay float64 whatever dtype the module is converted to
    (``precision=bf16-true``), float32 on a device without float64 (MPS)."""

    full_state_update = False
    STATES = ("total", "clips")

    def __init__(self) -> None:
        super().__init__()
        for name in self.STATES:
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> Module:
        this = super()._apply(fn, exclude_state=(*exclude_state, *self.STATES))
        device = fn(torch.zeros(1, device=self.total.device)).device  # where the module goes
        dtype = torch.float32 if device.type == "mps" else torch.float64
        for name in self.STATES:
            setattr(this, name, getattr(this, name).to(device=device, dtype=dtype))
            this._defaults[name] = this._defaults[name].to(device=device, dtype=dtype)
        return this

    def update(self, loss: torch.Tensor, clips: int | torch.Tensor) -> None:
        """``clips``: the batch's weight in the mean (its clip count, or a sum of weights)."""
        weight = torch.as_tensor(clips).detach().to(self.total)
        self.total += loss.detach().to(self.total.dtype).mean() * weight
        self.clips += weight

    def compute(self) -> torch.Tensor:
        return (self.total / self.clips).float()
