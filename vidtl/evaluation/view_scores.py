"""Multi-view testing: scoring the views of each video in chunks and averaging them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vidtl.core.errors import UserError

AGGREGATIONS = ("softmax", "logits", "max")


def check_view_scoring(aggregation: object, chunk: object) -> None:
    """``view_aggregation`` one of :data:`AGGREGATIONS` and ``view_chunk`` a whole number of
    clips >= 1 (conf/view_scoring.yaml), else a :class:`UserError` naming the key."""
    if aggregation not in AGGREGATIONS:
        raise UserError(f"view_aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UserError(f"view_chunk must be a whole number of clips >= 1, got {chunk!r}")


def view_probabilities(logits: torch.Tensor, multilabel: bool = False) -> torch.Tensor:
    """Class probabilities of logits ``(..., K)``: softmax, or per class sigmoid for a
    multi-label model."""
    return logits.float().sigmoid() if multilabel else logits.float().softmax(-1)


def aggregate_views(logits: torch.Tensor, aggregation: str = "softmax",
                    multilabel: bool = False) -> torch.Tensor:
    """Video scores ``(B, K)`` from view logits ``(B, V, K)``: the mean of the views'
    probabilities (``softmax``, the default: softmax, or sigmoid for a multi-label model), their
    maximum (``max``: Charades' protocol, a class counts where any view sees it), or the mean
    of their raw scores (``logits``; a multi-label model gives the sigmoid of that mean, so its
    scores stay probabilities that its thresholds apply to)."""
    if aggregation == "softmax":
        return view_probabilities(logits, multilabel).mean(1)
    if aggregation == "max":
        return view_probabilities(logits, multilabel).amax(1)
    if aggregation == "logits":
        mean = logits.float().mean(1)
        return mean.sigmoid() if multilabel else mean
    raise ValueError(f"view aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def score_views(views: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor],
                chunk: int) -> torch.Tensor:
    """Logits ``(B, V, K)`` of the clips ``views`` ``(B, V, T, C, H, W)``, scored ``chunk``
    clips at a time so memory stays bounded however many views a video has."""
    batch, num_views = views.shape[:2]
    flat = views.flatten(0, 1)
    logits = torch.cat([score(part) for part in flat.split(max(1, chunk))])
    return logits.view(batch, num_views, -1)
