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
residual (and depthwise-separable) blocks of timm and torchvision.
"""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.backbones import Backbone
from vidtl.models.temporal import AvgPool

SUPPORTED_FAMILIES = (
    "ResNet-family BasicBlock/Bottleneck (timm, torchvision), EfficientNet/MobileNet "
    "InvertedResidual and DepthwiseSeparableConv (timm), torchvision MobileNetV2/V3 "
    "InvertedResidual and EfficientNet MBConv"
)


def temporal_shift(x: torch.Tensor, num_frames: int, fold_div: int = 8) -> torch.Tensor:
    """Shift channels of ``(B*T, C, H, W)`` along time (T = ``num_frames``)."""
    total, channels = x.shape[:2]
    if total % num_frames:
        raise ValueError(f"temporal shift over clips of {num_frames} frames got a batch of "
                         f"{total} frames, not a multiple of {num_frames}")
    if num_frames == 1:
        return x
    clips = x.view(total // num_frames, num_frames, *x.shape[1:])
    fold = channels // fold_div
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]  # frame t sees frame t+1
    out[:, 1:, fold : 2 * fold] = clips[:, :-1, fold : 2 * fold]  # frame t sees frame t-1
    out[:, :, 2 * fold :] = clips[:, :, 2 * fold :]
    return out.view_as(x)


def _shift_targets(model: nn.Module, placement: str, blocks: str = "residual"
                   ) -> list[nn.Module]:
    """The modules whose input gets shifted, one per supported block."""
    every = blocks == "all"
    targets = []
    for module in model.modules():
        kind = type(module).__name__
        if kind in ("BasicBlock", "Bottleneck") and hasattr(module, "conv1"):
            targets.append(module.conv1 if placement == "residual" else module)
        elif kind in ("InvertedResidual", "DepthwiseSeparableConv") and hasattr(module, "has_skip"):
            if placement == "inplace":
                targets.append(module)
            elif module.has_skip or every:  # timm; residual: where a shortcut keeps the frame
                targets.append(module.conv_pw if kind == "InvertedResidual" else module.conv_dw)
        elif kind in ("InvertedResidual", "MBConv") and hasattr(module, "use_res_connect"):
            if placement == "inplace":
                targets.append(module)
            elif module.use_res_connect or every:
                branch = module.conv if hasattr(module, "conv") else module.block
                targets.append(branch[0])
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
