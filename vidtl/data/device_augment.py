"""Random crop and flip of a whole batch on the device (``data.augment_on=device``).

The workers deliver uint8 clips of one fixed size; here each clip gets its own random box (the
same boxes as :class:`~vidtl.data.transforms.TrainClipTransform` draws), cropped and resized in
one ``roi_align`` call for the whole batch, then flipped where drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import roi_align

from vidtl.data.transforms import TrainClipTransform


@dataclass(frozen=True)
class DeviceClipAugment:
    """The random crop and flip of ``transform`` (its boxes, sizes and flips), batched."""

    transform: TrainClipTransform

    @property
    def crop_size(self) -> int:
        return self.transform.crop_size

    def __call__(self, clips: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``(B, T, C, H, W)`` to float ``(B, T, C, crop, crop)`` in 0..255."""
        batch, frames, channels, height, width = clips.shape
        draw = self.transform
        rois, flips = [], []
        for index in range(batch):
            top, left, box_h, box_w = draw.random_box(height, width, rng)
            rois.append((index, left, top, left + box_w, top + box_h))
            flips.append(draw.random_flip(rng))
        rois_tensor = torch.tensor(rois, dtype=torch.float32, device=clips.device)
        planes = clips.reshape(batch, frames * channels, height, width).float()
        out = roi_align(planes, rois_tensor, self.crop_size, spatial_scale=1.0,
                        sampling_ratio=-1, aligned=True)
        out = out.reshape(batch, frames, channels, self.crop_size, self.crop_size)
        flip = torch.tensor(flips, device=clips.device)
        return torch.where(flip.view(-1, 1, 1, 1, 1), out.flip(-1), out)
