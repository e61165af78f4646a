"""A temporal shift for ViT blocks (the TSM analogue for transformers).

In every block, before the attention (inside the residual branch, after ``norm1``), a fraction
``1/fold_div`` of every token's channels is taken from the next frame and another ``1/fold_div``
from the previous one (zeros past the clip's ends), so attention and MLP mix neighbouring
frames at no parameter cost. ViT only; CNNs have ``model/temporal=tsm``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone
from vidtl.models.temporal import AvgPool


def shift_tokens(x: torch.Tensor, num_frames: int, fold_div: int = 8) -> torch.Tensor:
    """Shift channels of tokens ``(B*T, L, C)`` along time (T = ``num_frames``)."""
    total, length, channels = x.shape
    if total % num_frames:
        raise ValueError(f"token shift over clips of {num_frames} frames got a batch of "
                         f"{total} frames, not a multiple of {num_frames}")
    clips = x.view(total // num_frames, num_frames, length, channels)
    fold = channels // fold_div
    out = torch.zeros_like(clips)
    out[:, :-1, :, :fold] = clips[:, 1:, :, :fold]  # frame t sees frame t+1
    out[:, 1:, :, fold : 2 * fold] = clips[:, :-1, :, fold : 2 * fold]  # ... and t-1
    out[:, :, :, 2 * fold :] = clips[:, :, :, 2 * fold :]
    return out.view_as(x)


class TokenShift(AvgPool):
    """``model/temporal=token_shift``: channel shifts in every ViT block, then average."""

    def __init__(self, in_features: int, num_frames: int, fold_div: int = 8) -> None:
        super().__init__(in_features, num_frames)
        self.num_frames = num_frames
        self.fold_div = fold_div
        self.num_blocks = 0

    def attach(self, backbone: Backbone) -> None:
        _, blocks = adaptable_blocks(backbone, families=("vit",), method="token shift")
        for block in blocks:
            block.module.attn.register_forward_pre_hook(self._hook)
        self.num_blocks = len(blocks)

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]
              ) -> tuple[torch.Tensor, ...]:
        return (shift_tokens(inputs[0], self.num_frames, self.fold_div), *inputs[1:])
