"""The kinds of item and batch that reach the model, one named tuple each.

A dataset returns an item of a declared kind; its collate function builds the batch of the
matching kind (:data:`BATCH_OF`), and that type travels to the device stage, the module, batch
mixing and the stream: what a batch is, is never guessed from a tensor's shape.

- :class:`ClipItem` -> :class:`ClipBatch`: clips ``(B, T, C, H, W)`` uint8 (or JPEG bytes,
  ``decode_on=device``) and labels;
- :class:`ViewsItem` -> :class:`ViewsBatch`: views ``(B, V, T, C, H, W)`` uint8 (the multi-view
  test), labels and the videos' numbers;
- a feature-cache row -> :class:`FeatureBatch`: frame features ``(B, T, D)`` (the backbone is
  skipped) and labels.

Being tuples, batches unpack as before (``clips, labels = batch``), and PyTorch's pinning and
Lightning's device moves keep their type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch


class ClipItem(NamedTuple):
    """One training or validation clip ``(T, C, H, W)`` (or its JPEG bytes) and its label (a
    class index, or a float32 multi-hot vector ``(K,)`` for a multi-label dataset)."""

    clip: Any
    label: int | torch.Tensor


class ViewsItem(NamedTuple):
    """The test views ``(V, T, C, H, W)`` of one video, its label and its number in the
    subset (views are scored per video)."""

    views: torch.Tensor
    label: int | torch.Tensor
    video: int


class ClipBatch(NamedTuple):
    """Clips ``(B, T, C, H, W)``: uint8 from the loader, normalised floats after the device
    stage (or an ``EncodedClipBatch`` of JPEG bytes before it), and labels ``(B,)`` (class
    indices) or ``(B, K)`` (multi-hot, a multi-label dataset)."""

    clips: Any
    labels: torch.Tensor


class ViewsBatch(NamedTuple):
    """Test views ``(B, V, T, C, H, W)`` uint8 (normalised chunk by chunk when scored), labels
    ``(B,)`` and the videos' numbers ``(B,)``."""

    views: torch.Tensor
    labels: torch.Tensor
    videos: torch.Tensor


class FeatureBatch(NamedTuple):
    """Cached frame features ``(B, T, D)`` (the backbone's output) and labels ``(B,)`` (or
    multi-hot ``(B, K)``)."""

    features: torch.Tensor
    labels: torch.Tensor


BATCH_OF: dict[type, type] = {ClipItem: ClipBatch, ViewsItem: ViewsBatch}


def batch_kind(items: Sequence[Any]) -> type:
    """The batch type of ``items``, all of one declared item kind."""
    kinds = {type(item) for item in items}
    if len(kinds) != 1 or (kind := kinds.pop()) not in BATCH_OF:
        names = sorted(k.__name__ for k in {type(item) for item in items})
        raise TypeError(f"a batch's items must all be one of {[k.__name__ for k in BATCH_OF]}, "
                        f"got {names}")
    return BATCH_OF[kind]
