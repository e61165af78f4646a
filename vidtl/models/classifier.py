"""The video classifier: a 2D backbone applied to every frame, a temporal module, a head."""

from __future__ import annotations

import torch
from torch import nn

from vidtl.models.backbones import Backbone
from vidtl.models.in_backbone import InBackboneTemporal


class VideoClassifier(nn.Module):
    """``(B, T, C, H, W)`` -> fold to ``(B*T, C, H, W)`` -> backbone -> ``(B, T, D)`` ->
    temporal module -> dropout -> linear head -> logits ``(B, num_classes)``.

    An in-backbone temporal module (:class:`InBackboneTemporal`, e.g. TSM) is attached to the
    backbone first; clips must then have the length it was built for.
    """

    def __init__(self, backbone: Backbone, temporal: nn.Module, num_classes: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.backbone = backbone
        self.temporal = temporal
        self.clip_length: int | None = None  # fixed when a temporal module works inside
        if isinstance(temporal, InBackboneTemporal):
            temporal.attach(backbone)
            self.clip_length = temporal.num_frames
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(temporal.out_features, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    channels_last = False  # frames handed to the backbone in channels-last memory layout

    def use_channels_last(self) -> VideoClassifier:
        """Backbone weights and input frames in channels-last layout (faster convolutions on
        tensor cores, especially with bf16/fp16)."""
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame backbone features ``(B, T, D)``."""
        if clips.ndim != 5:
            raise ValueError(f"expected clips (B, T, C, H, W), got shape {tuple(clips.shape)}")
        batch, frames = clips.shape[:2]
        if self.clip_length is not None and frames != self.clip_length:
            raise ValueError(f"this model's temporal module works inside the backbone on clips of "
                             f"{self.clip_length} frames (data.num_frames); got {frames}")
        images = clips.flatten(0, 1)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        features = self.backbone(images)
        return features.view(batch, frames, -1)

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """The temporal module's clip embedding ``(B, D')``."""
        return self.temporal(self.frame_features(clips))

    def classify_frame_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from per-frame backbone features ``(B, T, D)`` (cached features)."""
        return self.head(self.dropout(self.temporal(features)))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.clip_features(clips)))
