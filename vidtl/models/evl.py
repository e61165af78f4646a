"""An EVL-style head (Lin et al., ECCV 2022): a temporal transformer decoder reading the
features of several layers of a frozen backbone.

The outputs of the last ``layers`` blocks are captured by forward hooks, projected to ``dim``,
given a learned embedding of their frame index, and read in turn by one transformer decoder
layer each: a learned query cross-attends to all tokens of all frames of that layer. The
query's result is projected to the backbone's feature width and added to the average of the
final frame features; that projection starts at zero, so at step 0 the head equals average
pooling. For ViT (tokens) and CNN backbones (each map position is a token).
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone
from vidtl.models.st_adapter import clip_tokens


class EVLDecoder(nn.Module):
    """``model/temporal=evl``: see the module docstring. Train with a frozen backbone
    (``finetune=linear_probe`` or ``finetune=adapter``)."""

    def __init__(self, in_features: int, num_frames: int, layers: int = 4, dim: int = 128,
                 heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.out_features = in_features
        self.num_frames = num_frames
        self.layers = layers
        self.dim = dim
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.time_embed = nn.Parameter(torch.zeros(layers, num_frames, dim))
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        self.decoders = nn.ModuleList(
            nn.TransformerDecoderLayer(dim, heads, int(dim * mlp_ratio), dropout,
                                       batch_first=True, norm_first=True)
            for _ in range(layers)
        )
        self.projections = nn.ModuleList()
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, in_features)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.family = ""
        self._captured: list[torch.Tensor] = []

    def attach(self, backbone: Backbone) -> None:
        self.family, blocks = adaptable_blocks(backbone, method="the EVL decoder")
        if len(blocks) < self.layers:
            raise ValueError(f"the EVL decoder reads {self.layers} layers; backbone "
                             f"{backbone.name!r} has {len(blocks)} blocks")
        backbone.model.register_forward_pre_hook(self._clear)
        for block in blocks[-self.layers:]:
            self.projections.append(nn.Linear(block.out_channels, self.dim))
            block.module.register_forward_hook(self._capture)

    def _clear(self, module: nn.Module, inputs: tuple) -> None:
        self._captured = []

    def _capture(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._captured.append(clip_tokens(output, self.family)[0])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        clips, frames = features.shape[:2]
        captured, self._captured = self._captured, []
        if len(captured) != self.layers:
            raise RuntimeError(f"the EVL decoder expected {self.layers} captured layers from the "
                               f"backbone's last forward, found {len(captured)}")
        query = self.query.expand(clips, -1, -1)
        for index, (tokens, project, decoder) in enumerate(
            zip(captured, self.projections, self.decoders)
        ):
            memory = project(tokens).view(clips, frames, tokens.shape[1], self.dim)
            memory = memory + self.time_embed[index, :frames, None]
            query = decoder(query, memory.flatten(1, 2))
        return features.mean(dim=1) + self.out(self.norm(query[:, 0]))
