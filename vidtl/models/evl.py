"""An EVL-style head (Lin et al., ECCV 2022): a temporal transformer decoder reading the
features of several layers of a frozen backbone.

The outputs of the last ``layers`` blocks are captured by forward hooks, projected to ``dim``,
given a learned embedding of their frame index and, as EVL's local temporal modelling, a
depthwise convolution over neighbouring frames at every token position (``temporal_kernel``,
residual, zero-initialised; 0 turns it off). One transformer decoder layer per captured block
then lets a learned query cross-attend to all tokens of all frames of that layer. The
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
                 heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 temporal_kernel: int = 3) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if temporal_kernel < 0 or (temporal_kernel and temporal_kernel % 2 == 0):
            raise ValueError(f"temporal_kernel must be 0 (off) or odd, got {temporal_kernel}")
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
        self.temporal_convs = nn.ModuleList()
        for _ in range(layers if temporal_kernel else 0):
            conv = nn.Conv1d(dim, dim, temporal_kernel, padding=temporal_kernel // 2, groups=dim)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.temporal_convs.append(conv)
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

    @staticmethod
    def _temporal_conv(memory: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
        """``conv`` over the frame axis of ``memory`` ``(clips, frames, tokens, dim)``, at every
        token position."""
        clips, frames, tokens, dim = memory.shape
        series = memory.permute(0, 2, 3, 1).reshape(clips * tokens, dim, frames)
        return conv(series).view(clips, tokens, dim, frames).permute(0, 3, 1, 2)

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
            if self.temporal_convs:
                memory = memory + self._temporal_conv(memory, self.temporal_convs[index])
            query = decoder(query, memory.flatten(1, 2))
        return features.mean(dim=1) + self.out(self.norm(query[:, 0]))
