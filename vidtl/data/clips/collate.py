"""Collating clips into a batch with one plain copy.

The CPU transforms return clips in the decoded frames' memory layout: ``(T, C, H, W)`` strides
over ``(T, H, W, C)`` memory (channels last; a crop that needs no resize is a view into the
frames). Stacking them into a contiguous ``(B, T, C, H, W)`` batch would transpose every pixel;
:func:`collate_clips` stacks their ``(T, H, W, C)`` views instead (a plain copy, into shared
memory in a loader worker, as PyTorch's own collation does) and hands out the
``(B, T, C, H, W)`` view of the result, in the batch type that the items' kind declares
(:mod:`vidtl.data.clips.batches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from vidtl.data.clips.batches import batch_kind


def _channels_last(clip: Any) -> bool:
    """A clip tensor ``(..., C, H, W)`` whose channels are adjacent in memory."""
    return isinstance(clip, torch.Tensor) and clip.stride(-3) == 1


def channels_last_clips(items: Sequence[Any]) -> list[torch.Tensor] | None:
    """The ``(T, H, W, C)`` memory of the items' clips (or views), or None when they are not
    channels-last tensors."""
    if not all(_channels_last(item[0]) for item in items):
        return None
    return [item[0].movedim(-3, -1) for item in items]


def collate_clips(items: Sequence[Any]) -> Any:
    """The batch of ``items`` (:class:`~vidtl.data.clips.batches.ClipItem` or
    :class:`~vidtl.data.clips.batches.ViewsItem`), the clips stacked as channels-last memory
    when they are laid out so (see the module docstring)."""
    kind = batch_kind(items)
    clips = channels_last_clips(items)
    stacked = (default_collate(clips).movedim(-1, -3) if clips is not None
               else default_collate([item[0] for item in items]))
    return kind(stacked, *default_collate([tuple(item[1:]) for item in items]))
