"""Multi-view testing: scoring the views of each video in chunks and averaging them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vidtl.core.errors import UserError

AGGREGATIONS = ("softmax", "logits")


def check_view_scoring(aggregation: object, chunk: object) -> None:
    """``view_aggregation`` one of :data:`AGGREGATIONS` and ``view_chunk`` a whole number of
    clips >= 1 (conf/view_scoring.yaml), else a :class:`UserError` naming the key."""
    if aggregation not in AGGREGATIONS:
        raise UserError(f"view_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UserError(f"view_chunk must be a whole number of clips >= 1, got {chunk!r}")


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
