"""AIM (Yang et al., ICLR 2023): a ViT's own attention reused over time, plus adapters.

In every block of a (frozen) ViT, three bottleneck adapters are added; each projection back up
starts at zero, so at step 0 the model computes exactly the image model's features:

- temporal: before the block, the tokens of each position attend over the clip's frames with the
  block's own attention weights (a learned temporal embedding added first), and
  ``x + T-Adapter(attn(norm1(x_time)))`` goes on;
- spatial: the block's attention output ``a`` becomes ``a + S-Adapter(a)``;
- MLP: the block's MLP output gets ``scale * MLP-Adapter(mlp input)`` added (in parallel).

ViT only (the block's attention is what is reused). The adapters and the temporal embedding
live in the temporal module (``temporal.*``); hooks apply them, the backbone's state dict is
unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import adaptable_blocks
from vidtl.models.backbones import Backbone
from vidtl.models.st_adapter import bottleneck_width
from vidtl.models.temporal import AvgPool


class BottleneckAdapter(nn.Module):
    """``up(gelu(down(x)))``; ``up`` starts at zero, so the output starts at zero."""

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        width = bottleneck_width(channels, ratio)
        self.down = nn.Linear(channels, width)
        self.act = nn.GELU()
        self.up = nn.Linear(width, channels)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class AIMBlockAdapters(nn.Module):
    """The three adapters of one block."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        self.temporal = BottleneckAdapter(channels, ratio)
        self.spatial = BottleneckAdapter(channels, ratio)
        self.mlp = BottleneckAdapter(channels, ratio)


class AIM(AvgPool):
    """``model/temporal=aim``: AIM adapters in every ViT block, then the average over time."""

    def __init__(self, in_features: int, num_frames: int, ratio: float = 0.25,
                 mlp_scale: float = 0.5) -> None:
        super().__init__(in_features, num_frames)
        self.num_frames = num_frames
        self.ratio = ratio
        self.mlp_scale = mlp_scale
        self.adapters = nn.ModuleList()
        self.time_embed: nn.Parameter | None = None

    def attach(self, backbone: Backbone) -> None:
        _, blocks = adaptable_blocks(backbone, families=("vit",), method="AIM")
        width = blocks[0].channels
        self.time_embed = nn.Parameter(torch.zeros(self.num_frames, width))
        nn.init.trunc_normal_(self.time_embed, std=0.02)  # the T-Adapter starts at 0 anyway
        for block in blocks:
            adapters = AIMBlockAdapters(block.channels, self.ratio)
            self.adapters.append(adapters)
            module = block.module
            module.register_forward_pre_hook(self._temporal_hook(module, adapters))
            module.attn.register_forward_hook(self._spatial_hook(adapters))
            module.mlp.register_forward_hook(self._mlp_hook(adapters))

    def _temporal_hook(self, block: nn.Module, adapters: AIMBlockAdapters):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            x = inputs[0]
            total, length, width = x.shape
            frames = self.num_frames
            clips = total // frames
            over_time = x.view(clips, frames, length, width).transpose(1, 2)
            over_time = over_time.reshape(clips * length, frames, width) + self.time_embed
            # The block's own attention over time: forward() directly, so that the spatial
            # adapter's hook on the attention does not run here.
            attended = adapters.temporal(block.attn.forward(block.norm1(over_time)))
            attended = attended.view(clips, length, frames, width).transpose(1, 2)
            return (x + attended.reshape(total, length, width), *inputs[1:])

        return hook

    @staticmethod
    def _spatial_hook(adapters: AIMBlockAdapters):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            return output + adapters.spatial(output)

        return hook

    def _mlp_hook(self, adapters: AIMBlockAdapters):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            return output + self.mlp_scale * adapters.mlp(inputs[0])

        return hook
