"""Mixup and CutMix for video batches: two clips blended, or a box of one pasted into the other
at the same place in every frame, with their labels mixed in the same proportion.

The random draws come from a numpy generator the module derives from the seed and the step
(:meth:`~vidtl.training.module.VideoClassificationModule.augment_generator`), so a resumed run
mixes as an uninterrupted one would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vidtl.core.errors import UserError
from vidtl.data.clips.batches import ClipBatch, FeatureBatch

log = logging.getLogger(__name__)
_SAID_MIXUP_ONLY: set[type] = set()  # batch kinds warned about once


@dataclass(frozen=True)
class BatchMixing:
    """Mixup (``mixup_alpha`` > 0: the mixing weight is drawn from Beta(alpha, alpha)) and
    CutMix (``cutmix_alpha`` > 0); with both, each batch uses CutMix with probability
    ``cutmix_probability``. A :class:`~vidtl.data.clips.batches.ClipBatch` takes both; a
    :class:`~vidtl.data.clips.batches.FeatureBatch` (cached frame features, which have no
    pixels to cut) takes Mixup only: CutMix alone is refused, and with both, every batch uses
    Mixup (said once)."""

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

    def __call__(self, batch: ClipBatch | FeatureBatch, num_classes: int,
                 rng: np.random.Generator) -> tuple[ClipBatch | FeatureBatch, torch.Tensor]:
        """The mixed batch and its soft targets ``(B, num_classes)``: rows summing to 1, or for
        multi-hot labels (multi-label) the same mixture of the two clips' multi-hot rows."""
        inputs, labels = batch
        targets = (labels.to(torch.float32) if labels.ndim == 2  # multi-hot (multi-label)
                   else F.one_hot(labels, num_classes).to(torch.float32))
        can_cut = isinstance(batch, ClipBatch)
        if self.cutmix_alpha > 0 and not can_cut:
            self._no_cutmix_on(type(batch))
        if not self.enabled or len(labels) < 2:
            return batch, targets
        order = torch.from_numpy(rng.permutation(len(labels))).to(labels.device)
        use_cutmix = self.cutmix_alpha > 0 and can_cut and (
            self.mixup_alpha == 0 or rng.random() < self.cutmix_probability)
        if use_cutmix:
            inputs, weight = self._cutmix(inputs, order, rng)
        else:
            weight = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            inputs = weight * inputs + (1 - weight) * inputs[order]
        return type(batch)(inputs, labels), weight * targets + (1 - weight) * targets[order]

    def _no_cutmix_on(self, kind: type) -> None:
        """CutMix on a batch without pixels: refused alone, said once beside Mixup."""
        if self.mixup_alpha == 0:
            raise UserError(f"module.cutmix_alpha needs clips (B, T, C, H, W); a "
                            f"{kind.__name__} (cached frame features) has no pixels to cut: "
                            f"use module.mixup_alpha")
        if kind not in _SAID_MIXUP_ONLY:
            _SAID_MIXUP_ONLY.add(kind)
            log.warning("module.cutmix_alpha is off for %s (cached frame features have no "
                        "pixels to cut): every batch uses Mixup", kind.__name__)

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
