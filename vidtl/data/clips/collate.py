"""Collating clips into a batch with one plain copy.

The CPU transforms return clips in the decoded frames' memory layout: ``(T, C, H, W)`` strides
over ``(T, H, W, C)`` memory (channels last; a crop that needs no resize is a view into the
frames). Stacking them into a contiguous ``(B, T, C, H, W)`` batch would transpose every pixel;
:func:`collate_clips` stacks their ``(T, H, W, C)`` views instead (a plain copy, into shared
memory in a loader worker, as PyTorch's own collation does) and hands out the
``(B, T, C, H, W)`` view of the result. Every other item goes through ``default_collate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate


def _channels_last(clip: Any) -> bool:
    """A clip ``(..., C, H, W)`` whose channels are adjacent in memory."""
    return isinstance(clip, torch.Tensor) and clip.ndim >= 4 and clip.stride(-3) == 1


def channels_last_clips(items: Sequence[Any]) -> list[torch.Tensor] | None:
    """The ``(T, H, W, C)`` memory of the clips of ``(clip, label, ...)`` items, or None when
    the items are not such tuples with channels-last clips."""
    if not all(isinstance(i, tuple | list) and i and _channels_last(i[0]) for i in items):
        return None
    return [item[0].movedim(-3, -1) for item in items]


def collate_clips(items: Sequence[Any]) -> Any:
    """``default_collate`` of ``(clip, label, ...)`` items, the clips stacked as channels-last
    memory (see the module docstring)."""
    clips = channels_last_clips(items)
    if clips is None:
        return default_collate(items)
    return (default_collate(clips).movedim(-1, -3),
            *default_collate([tuple(item[1:]) for item in items]))
