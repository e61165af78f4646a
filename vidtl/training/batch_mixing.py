"""Mixup and CutMix for video batches: two clips blended, or a box of one pasted into the other
at the same place in every frame, with their labels mixed in the same proportion.

The random draws come from a numpy generator the module derives from the seed and the step
(:meth:`~vidtl.training.module.VideoClassificationModule.augment_generator`), so a resumed run
mixes as an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vidtl.core.errors import UserError


@dataclass(frozen=True)
class BatchMixing:
    """Mixup (``mixup_alpha`` > 0: the mixing weight is drawn from Beta(alpha, alpha)) and
    CutMix (``cutmix_alpha`` > 0); with both, each batch uses CutMix with probability
    ``cutmix_probability``. Clips are ``(B, T, C, H, W)``, or cached frame features
    ``(B, T, D)`` (Mixup only)."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    cutmix_probability: float = 0.5

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise UserError(f"module.mixup_alpha and module.cutmix_alpha must be >= 0 (0: off), "
                            f"got {self.mixup_alpha} and {self.cutmix_alpha}")
        if not 0 <= self.cutmix_probability <= 1:
            raise UserError(f"module.cutmix_probability must be in [0, 1], got "
                            f"{self.cutmix_probability}")

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed clips and their soft targets ``(B, num_classes)``, rows summing to 1."""
        targets = F.one_hot(labels, num_classes).to(torch.float32)
        if not self.enabled or len(labels) < 2:
            return clips, targets
        order = torch.from_numpy(rng.permutation(len(labels))).to(labels.device)
        use_cutmix = self.cutmix_alpha > 0 and clips.ndim == 5 and (
            self.mixup_alpha == 0 or rng.random() < self.cutmix_probability)
        if use_cutmix:
            clips, weight = self._cutmix(clips, order, rng)
        elif self.mixup_alpha > 0:
            weight = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            clips = weight * clips + (1 - weight) * clips[order]
        else:  # CutMix alone on cached features: nothing to cut
            raise UserError("module.cutmix_alpha needs clips (B, T, C, H, W); with cached "
                            "frame features use module.mixup_alpha")
        return clips, weight * targets + (1 - weight) * targets[order]

    def _cutmix(self, clips: torch.Tensor, order: torch.Tensor,
                rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        """Paste a box of the partner clip, the same in every frame; the weight is the share of
        the original clip's area that is left."""
        height, width = clips.shape[-2:]
        area = float(rng.beta(self.cutmix_alpha, self.cutmix_alpha))
        cut_h, cut_w = int(height * np.sqrt(1 - area)), int(width * np.sqrt(1 - area))
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        mixed = clips.clone()
        mixed[..., top:bottom, left:right] = clips[order][..., top:bottom, left:right]
        return mixed, 1 - (bottom - top) * (right - left) / (height * width)
