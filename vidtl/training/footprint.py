"""What a run costs: trainable parameters (count and share of the total) and peak memory."""

from __future__ import annotations

import resource
import sys

import torch
from torch import nn


def parameter_counts(model: nn.Module) -> dict[str, float]:
    """``trainable_params``, ``total_params`` and ``trainable_share`` (0..1) of ``model``.

    Trainable means ``requires_grad``: under ``finetune=adapter`` or ``linear_probe`` this is
    what the optimizer updates (schedules that freeze stages for some epochs keep
    ``requires_grad``, so they count as trainable).
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_params": trainable, "total_params": total,
            "trainable_share": trainable / total if total else 0.0}


def peak_memory_mb(device: torch.device | None = None) -> dict[str, float]:
    """Peak memory so far: the GPU's allocated tensors (``peak_gpu_memory_mb``) when
    ``device`` is a CUDA device, and this process's resident memory (``peak_rss_mb``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes vs KiB
    peaks = {"peak_rss_mb": rss_mb}
    if device is not None and device.type == "cuda":
        peaks["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks
