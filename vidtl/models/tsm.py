"""Temporal Shift Module (Lin et al., ICCV 2019) inserted into a 2D backbone.

A fraction ``1/fold_div`` of the channels is shifted one frame backward in time, another
``1/fold_div`` one frame forward, the rest is left alone; frames shifted in from outside the
clip are zeros. The shift is a forward pre-hook on a convolution of each block, so it adds no
parameters and leaves the backbone's state dict (and its pretrained weights) unchanged.

Placement ``residual`` shifts the input of the residual branch only (the shortcut keeps the
frame's own features; TSM's recommended variant); ``inplace`` shifts the block's input.
``blocks='residual'`` shifts only blocks with a shortcut; ``blocks='all'`` every supported block
(an EfficientNet's blocks without a shortcut, too: the shift before every pointwise convolution).
Supported: ResNet-family blocks of timm and torchvision, EfficientNet / MobileNet inverted
residual (and depthwise-separable) blocks of timm and torchvision, as declared (with the layer
that starts each residual branch) in :data:`vidtl.models.adaptable_blocks.CNN_BLOCKS`.
:func:`temporal_shift` is also token shift's (:mod:`vidtl.models.token_shift`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.adaptable_blocks import cnn_block_types
from vidtl.models.backbones import Backbone
from vidtl.models.temporal import AvgPool

SUPPORTED_FAMILIES = (
    "ResNet-family BasicBlock/Bottleneck (timm, torchvision), EfficientNet/MobileNet "
    "InvertedResidual and DepthwiseSeparableConv (timm), torchvision MobileNetV2/V3 "
    "InvertedResidual and EfficientNet MBConv"
)


def temporal_shift(x: torch.Tensor, num_frames: int, fold_div: int = 8,
                   channel_dim: int = 1) -> torch.Tensor:
    """Shift channels of ``x`` along time: ``x`` holds ``B*T`` frames (T = ``num_frames``)
    along dim 0, channels along ``channel_dim`` (1: maps ``(B*T, C, H, W)``; -1: tokens
    ``(B*T, L, C)``). ``1/fold_div`` of them come from the next frame, ``1/fold_div`` from the
    previous one, zeros past the clip's ends; a clip of one frame is left as it is."""
    total = x.shape[0]
    if total % num_frames:
        raise ValueError(f"temporal shift over clips of {num_frames} frames got a batch of "
                         f"{total} frames, not a multiple of {num_frames}")
    if num_frames == 1:
        return x
    clips = x.view(total // num_frames, num_frames, *x.shape[1:])
    dim = channel_dim % x.dim() + 1  # the channel dim of ``clips``
    channels = x.shape[channel_dim]
    fold = channels // fold_div
    out = torch.zeros_like(clips)
    out.narrow(dim, 0, fold)[:, :-1] = clips.narrow(dim, 0, fold)[:, 1:]  # t sees t+1
    out.narrow(dim, fold, fold)[:, 1:] = clips.narrow(dim, fold, fold)[:, :-1]  # ... and t-1
    rest = channels - 2 * fold
    out.narrow(dim, 2 * fold, rest).copy_(clips.narrow(dim, 2 * fold, rest))
    return out.view_as(x)


def _shift_targets(model: nn.Module, placement: str, blocks: str = "residual"
                   ) -> list[nn.Module]:
    """The modules whose input gets shifted, one per block of a TSM-supported class
    (:data:`~vidtl.models.adaptable_blocks.CNN_BLOCKS` with a ``branch``)."""
    kinds = cnn_block_types()
    targets = []
    for module in model.modules():
        kind = kinds.get(type(module))
        if kind is None or kind.branch is None:
            continue
        if placement == "inplace":
            targets.append(module)
        elif kind.has_shortcut(module) or blocks == "all":  # where a shortcut keeps the frame
            targets.append(module.get_submodule(kind.branch))
    return targets


class TemporalShift:
    """Shift hooks on a backbone, for clips of ``num_frames`` frames."""

    def __init__(self, backbone: Backbone, num_frames: int, fold_div: int = 8,
                 placement: str = "residual", blocks: str = "all") -> None:
        if placement not in ("residual", "inplace"):
            raise ValueError(f"placement must be 'residual' or 'inplace', got {placement!r}")
        if blocks not in ("residual", "all"):
            raise ValueError(f"blocks must be 'residual' or 'all', got {blocks!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = num_frames
        self.fold_div = fold_div
        self.enabled = True
        targets = _shift_targets(backbone.model, placement, blocks)
        if not targets:
            raise ValueError(
                f"temporal shift does not support backbone {backbone.name!r}: it has no block of "
                f"the supported families ({SUPPORTED_FAMILIES})"
            )
        self.handles = [t.register_forward_pre_hook(self._hook) for t in targets]

    @property
    def num_blocks(self) -> int:
        return len(self.handles)

    def _hook(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        if not self.enabled:
            return inputs
        return (temporal_shift(inputs[0], self.num_frames, self.fold_div), *inputs[1:])

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class TemporalShiftConsensus(AvgPool):
    """``model/temporal=tsm``: temporal shifts inside the backbone, then average consensus.

    An in-backbone temporal module (:class:`~vidtl.models.in_backbone.InBackboneTemporal`):
    built for clips of ``num_frames`` frames, :meth:`attach` inserts the shifts when
    :class:`VideoClassifier` is built.
    """

    def __init__(
        self,
        in_features: int,
        num_frames: int,
        fold_div: int = 8,
        placement: str = "residual",
        blocks: str = "all",
    ) -> None:
        super().__init__(in_features, num_frames)
        self.num_frames = num_frames
        self.fold_div = fold_div
        self.placement = placement
        self.blocks = blocks
        self.shift: TemporalShift | None = None

    def attach(self, backbone: Backbone) -> None:
        self.shift = TemporalShift(backbone, self.num_frames, self.fold_div, self.placement,
                                   self.blocks)
