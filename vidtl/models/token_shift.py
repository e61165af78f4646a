"""A temporal shift for ViT blocks (the TSM analogue for transformers).

In every block, before the attention (inside the residual branch, after ``norm1``), a fraction
``1/fold_div`` of every token's channels is taken from the next frame and another ``1/fold_div``
from the previous one (zeros past the clip's ends), so attention and MLP mix neighbouring
frames at no parameter cost. The shift is TSM's (:func:`~vidtl.models.tsm.temporal_shift`), on
the channels of tokens ``(B*T, L, C)``. ViT only; CNNs have ``model/temporal=tsm``.
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone
from vidtl.models.temporal import AvgPool
from vidtl.models.tsm import temporal_shift


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
        shifted = temporal_shift(inputs[0], self.num_frames, self.fold_div, channel_dim=-1)
        return (shifted, *inputs[1:])
