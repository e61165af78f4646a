"""The blocks of a backbone that temporal adapters attach to, by backbone family.

Two families are supported:

- ``vit``: timm ``VisionTransformer``-style models (``patch_embed`` + ``blocks``: ViT, DeiT,
  CLIP, DINOv2, SigLIP and EVA weights). Each block maps tokens ``(N, L, C)`` to tokens, with
  ``attn`` and ``mlp`` submodules.
- ``cnn``: residual and inverted-residual blocks of timm and torchvision CNNs (ResNet
  BasicBlock/Bottleneck, EfficientNet/MobileNet InvertedResidual and DepthwiseSeparableConv,
  ConvNeXt blocks, torchvision MBConv/CNBlock). Each block maps ``(N, C, H, W)`` maps.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vidtl.core.errors import UserError
from vidtl.models.backbones import Backbone

CNN_BLOCKS = ("BasicBlock", "Bottleneck", "InvertedResidual", "DepthwiseSeparableConv",
              "ConvNeXtBlock", "MBConv", "FusedMBConv", "CNBlock")
SUPPORTED_FAMILIES = (
    "vit (timm VisionTransformer-style: patch_embed + blocks with attn and mlp; CLIP, DINOv2, "
    "SigLIP, EVA weights), cnn (ResNet, EfficientNet/MobileNet, ConvNeXt blocks of timm and "
    "torchvision)"
)


class UnsupportedBackboneError(UserError):
    """A temporal adapter was asked of a backbone family it does not support."""


@dataclass(frozen=True)
class AdaptableBlock:
    """One block: its name in the backbone model, the module, its input and output channels."""

    name: str
    module: nn.Module
    channels: int
    out_channels: int


def backbone_family(backbone: Backbone) -> str:
    """``'vit'`` or ``'cnn'``; an error naming the supported families for anything else."""
    model = backbone.model
    if hasattr(model, "patch_embed") and isinstance(getattr(model, "blocks", None),
                                                    (nn.Sequential, nn.ModuleList)):
        return "vit"
    if any(type(m).__name__ in CNN_BLOCKS for m in model.modules()):
        return "cnn"
    raise UnsupportedBackboneError(
        f"backbone {backbone.name!r} ({type(model).__name__}) is of no family that temporal "
        f"adapters support; supported: {SUPPORTED_FAMILIES}"
    )


def _conv_channels(block: nn.Module) -> tuple[int, int]:
    """Input channels of the block's first convolution, output channels of its last (a
    shortcut's projection, which comes last, has the block's output channels too)."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[0].in_channels, convs[-1].out_channels


def adaptable_blocks(backbone: Backbone, families: tuple[str, ...] = ("vit", "cnn"),
                     method: str = "this adapter") -> tuple[str, list[AdaptableBlock]]:
    """The backbone's family and its blocks, input first. ``families`` are the ones the
    calling method supports; another family is an error naming them."""
    family = backbone_family(backbone)
    if family not in families:
        raise UnsupportedBackboneError(
            f"{method} supports the backbone families {list(families)}; {backbone.name!r} is "
            f"a {family} backbone"
        )
    model = backbone.model
    if family == "vit":
        width = int(getattr(model, "embed_dim", 0) or model.num_features)
        return family, [AdaptableBlock(f"blocks.{i}", block, width, width)
                        for i, block in enumerate(model.blocks)]
    blocks = []
    for name, module in model.named_modules():
        if type(module).__name__ in CNN_BLOCKS and not any(
            name.startswith(b.name + ".") for b in blocks
        ):
            blocks.append(AdaptableBlock(name, module, *_conv_channels(module)))
    return family, blocks
