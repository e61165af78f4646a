"""Multi-view testing: scoring the views of each video in chunks and averaging them."""

from __future__ import annotations

from collections.abc import Callable

import torch

AGGREGATIONS = ("softmax", "logits")


def aggregate_views(logits: torch.Tensor, aggregation: str = "softmax") -> torch.Tensor:
    """Video scores ``(B, K)`` from view logits ``(B, V, K)``: the mean of the views' softmax
    probabilities (``softmax``, the default) or of their raw scores (``logits``)."""
    if aggregation == "softmax":
        return logits.float().softmax(-1).mean(1)
    if aggregation == "logits":
        return logits.float().mean(1)
    raise ValueError(f"view aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def score_views(views: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor],
                chunk: int) -> torch.Tensor:
    """Logits ``(B, V, K)`` of the clips ``views`` ``(B, V, T, C, H, W)``, scored ``chunk``
    clips at a time so memory stays bounded however many views a video has."""
    batch, num_views = views.shape[:2]
    flat = views.flatten(0, 1)
    logits = torch.cat([score(part) for part in flat.split(max(1, chunk))])
    return logits.view(batch, num_views, -1)
