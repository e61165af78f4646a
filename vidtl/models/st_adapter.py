"""ST-Adapter (Pan et al., NeurIPS 2022): a depthwise temporal convolution in a bottleneck,
added before every block of a frozen image backbone.

``x + up(conv_t(down(x)))`` on each block's input: ``down`` projects the channels to a
bottleneck, ``conv_t`` is a depthwise convolution over time (kernel 3; each token or pixel
position separately), ``up`` projects back. ``up`` starts at zero, so at step 0 the model computes
exactly the image model's features. Works on ViT tokens ``(B*T, L, C)`` and CNN maps
``(B*T, C, H, W)`` (:mod:`vidtl.models.adaptable_blocks`). The adapters live in the temporal
module (``temporal.adapters.<i>``), so the backbone's state dict and pretrained weights are
untouched; they are applied by forward pre-hooks.
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone
from vidtl.models.temporal import AvgPool


def bottleneck_width(channels: int, ratio: float) -> int:
    return max(8, round(channels * ratio))


def clip_tokens(x: torch.Tensor, family: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    """A block input as channels-last tokens ``(B*T, L, C)``, and the shape to restore."""
    if family == "vit":
        return x, tuple(x.shape)
    return x.flatten(2).transpose(1, 2), tuple(x.shape)


def restore_layout(tokens: torch.Tensor, shape: tuple[int, ...], family: str) -> torch.Tensor:
    """The inverse of :func:`clip_tokens`."""
    if family == "vit":
        return tokens
    return tokens.transpose(1, 2).reshape(shape)


class TemporalConvAdapter(nn.Module):
    """down -> depthwise temporal conv -> up, on tokens ``(B*T, L, C)``; output starts at 0."""

    def __init__(self, channels: int, num_frames: int, ratio: float = 0.25,
                 kernel_size: int = 3) -> None:
        super().__init__()
        width = bottleneck_width(channels, ratio)
        self.num_frames = num_frames
        self.down = nn.Linear(channels, width)
        self.conv = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
        self.up = nn.Linear(width, channels)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        total, length, _ = tokens.shape
        frames = self.num_frames
        z = self.down(tokens)
        width = z.shape[-1]
        z = z.view(total // frames, frames, length, width).permute(0, 2, 3, 1)
        z = self.conv(z.reshape(-1, width, frames))
        z = z.view(total // frames, length, width, frames).permute(0, 3, 1, 2)
        return self.up(z.reshape(total, length, width))


class STAdapter(AvgPool):
    """``model/temporal=st_adapter``: an ST-Adapter before every block, then the average over
    time. ``blocks='all'`` or the number of top blocks that get one."""

    def __init__(self, in_features: int, num_frames: int, ratio: float = 0.25,
                 kernel_size: int = 3, blocks: int | str = "all") -> None:
        super().__init__(in_features, num_frames)
        self.num_frames = num_frames
        self.ratio = ratio
        self.kernel_size = kernel_size
        self.blocks = blocks
        self.adapters = nn.ModuleList()
        self.family = ""

    def attach(self, backbone: Backbone) -> None:
        self.family, found = adaptable_blocks(backbone, method="ST-Adapter")
        if self.blocks != "all":
            found = found[-int(self.blocks):]
        for block in found:
            adapter = TemporalConvAdapter(block.channels, self.num_frames, self.ratio,
                                          self.kernel_size)
            self.adapters.append(adapter)
            block.module.register_forward_pre_hook(self._hook_for(adapter))

    def _hook_for(self, adapter: TemporalConvAdapter):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            tokens, shape = clip_tokens(inputs[0], self.family)
            adapted = tokens + adapter(tokens)
            return (restore_layout(adapted, shape, self.family), *inputs[1:])

        return hook
