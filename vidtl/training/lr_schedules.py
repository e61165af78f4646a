"""Learning-rate schedules, stepped once per optimizer step.

A scheduler config is a ``_partial_`` callable that the module completes as
``factory(optimizer, total_steps=..., steps_per_epoch=...)``.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def cosine_with_warmup(optimizer: Optimizer, total_steps: int, steps_per_epoch: int,
                       warmup_epochs: float = 0.0, min_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to ``min_lr_ratio`` x the lr."""
    total_steps = max(total_steps, 1)
    warmup_steps = min(round(warmup_epochs * steps_per_epoch), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def constant(optimizer: Optimizer, total_steps: int, steps_per_epoch: int) -> LambdaLR:
    """The optimizer's learning rate throughout."""
    return LambdaLR(optimizer, lambda step: 1.0)
