"""The blocks of a backbone that temporal adapters attach to, by backbone family.

Two families are supported:

- ``vit``: timm ``VisionTransformer``-style models (``patch_embed`` + ``blocks``: ViT, DeiT,
  CLIP, DINOv2, SigLIP and EVA weights). Each block maps tokens ``(N, L, C)`` to tokens, with
  ``attn`` and ``mlp`` submodules.
- ``cnn``: the residual and inverted-residual block classes of timm and torchvision CNNs
  declared in :data:`CNN_BLOCKS` (ResNet BasicBlock/Bottleneck, EfficientNet/MobileNet
  InvertedResidual and DepthwiseSeparableConv, ConvNeXt blocks, torchvision MBConv/CNBlock).
  Each block maps ``(N, C, H, W)`` maps. The same declaration tells TSM
  (:mod:`vidtl.models.tsm`) where each block's residual branch starts.

Classes are declared by module and name and resolved when first needed (timm and torchvision
load lazily); one that the installed version lacks is left out.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from vidtl.core.errors import UserError
from vidtl.models.backbones import Backbone

SUPPORTED_FAMILIES = (
    "vit (timm VisionTransformer-style: patch_embed + blocks with attn and mlp; CLIP, DINOv2, "
    "SigLIP, EVA weights), cnn (ResNet, EfficientNet/MobileNet, ConvNeXt blocks of timm and "
    "torchvision)"
)


@dataclass(frozen=True)
class CnnBlockType:
    """A CNN block class (``module``, ``name``) and, where TSM supports it, the submodule
    that starts its residual branch (``branch``) and the attribute that says whether a block
    has a shortcut (``shortcut``; ``None``: every block has one)."""

    module: str
    name: str
    branch: str | None = None
    shortcut: str | None = None

    def has_shortcut(self, block: nn.Module) -> bool:
        return self.shortcut is None or bool(getattr(block, self.shortcut))


_TIMM_EFFNET = "timm.models._efficientnet_blocks"
CNN_BLOCKS = (
    CnnBlockType("timm.models.resnet", "BasicBlock", "conv1"),
    CnnBlockType("timm.models.resnet", "Bottleneck", "conv1"),
    CnnBlockType("timm.models.resnetv2", "Bottleneck", "conv1"),
    CnnBlockType("timm.models.regnet", "Bottleneck", "conv1"),
    CnnBlockType("timm.models.tresnet", "BasicBlock", "conv1"),
    CnnBlockType("timm.models.tresnet", "Bottleneck", "conv1"),
    CnnBlockType("torchvision.models.resnet", "BasicBlock", "conv1"),
    CnnBlockType("torchvision.models.resnet", "Bottleneck", "conv1"),
    CnnBlockType(_TIMM_EFFNET, "InvertedResidual", "conv_pw", "has_skip"),
    CnnBlockType(_TIMM_EFFNET, "DepthwiseSeparableConv", "conv_dw", "has_skip"),
    CnnBlockType("torchvision.models.mobilenetv2", "InvertedResidual", "conv.0",
                 "use_res_connect"),
    CnnBlockType("torchvision.models.mobilenetv3", "InvertedResidual", "block.0",
                 "use_res_connect"),
    CnnBlockType("torchvision.models.efficientnet", "MBConv", "block.0", "use_res_connect"),
    CnnBlockType("torchvision.models.efficientnet", "FusedMBConv"),
    CnnBlockType("timm.models.convnext", "ConvNeXtBlock"),
    CnnBlockType("torchvision.models.convnext", "CNBlock"),
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


def declared_class(module: str, name: str) -> type[nn.Module] | None:
    """The class ``name`` of ``module``; ``None`` where the installed version has none."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


@lru_cache(maxsize=1)
def cnn_block_types() -> dict[type[nn.Module], CnnBlockType]:
    """The declared CNN block classes (:data:`CNN_BLOCKS`), by class. A block is one of them
    by its exact class, not a subclass (a subclass may change the block's layout)."""
    declared = ((declared_class(kind.module, kind.name), kind) for kind in CNN_BLOCKS)
    return {cls: kind for cls, kind in declared if cls is not None}


def backbone_family(backbone: Backbone) -> str:
    """``'vit'`` or ``'cnn'``; an error naming the supported families for anything else."""
    model = backbone.model
    if hasattr(model, "patch_embed") and isinstance(getattr(model, "blocks", None),
                                                    (nn.Sequential, nn.ModuleList)):
        return "vit"
    kinds = cnn_block_types()
    if any(type(m) in kinds for m in model.modules()):
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


def _outermost_cnn_blocks(module: nn.Module, prefix: str = "") -> list[AdaptableBlock]:
    """The CNN blocks under ``module`` that no other block contains, input first."""
    found = []
    for name, child in module.named_children():
        if type(child) in cnn_block_types():
            found.append(AdaptableBlock(prefix + name, child, *_conv_channels(child)))
        else:
            found.extend(_outermost_cnn_blocks(child, f"{prefix}{name}."))
    return found


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
    return family, _outermost_cnn_blocks(model)
