"""Spatial transforms on uint8 clips, run by the loader (CPU).

CPU transforms take uint8 ``(T, H, W, C)`` frames and return uint8 ``(T, C, size, size)``. Every
frame of a clip gets the same crop and flip. Crop boxes are computed in the coordinates of the
decoded frame, so each clip is resized exactly once. With ``data.augment_on=device`` the workers
only bring clips to one fixed size (:class:`CoverResizeTransform`) and the random crop and flip
run batched on the device (:mod:`vidtl.data.loading.device_stage`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

Box = tuple[int, int, int, int]  # top, left, height, width
# What a worker runs on a clip: uint8 frames (T, H, W, C) and a generator to a tensor.
ClipTransform = Callable[[np.ndarray, np.random.Generator], torch.Tensor]


def _to_tchw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    clip = torch.as_tensor(frames)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got shape {tuple(clip.shape)}")
    return clip.permute(0, 3, 1, 2)


def _resize_crop(clip: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    """The box resized to ``size`` x ``size``. The result keeps the decoded frames' memory
    layout (channels last, (T, C, H, W) strides over (T, H, W, C) memory): the batch's
    collation makes its one copy, instead of a second one here."""
    top, left, height, width = box
    return F.resized_crop(clip, top, left, height, width, [size, size], antialias=True)


@dataclass(frozen=True)
class EvalClipTransform:
    """Resize the short side to ``short_side``, then take the centre ``crop_size`` square.

    :meth:`crops` gives the spatial views of multi-view testing: the centre square, or three
    squares at the start, centre and end of the long side (left/centre/right or
    top/centre/bottom).
    """

    crop_size: int = 224
    short_side: int = 256

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        return self.crops(frames, 1)[0]

    def crops(self, frames: np.ndarray | torch.Tensor, num_crops: int) -> list[torch.Tensor]:
        """``num_crops`` (1 or 3) uint8 ``(T, C, crop, crop)`` views of one clip."""
        if num_crops not in (1, 3):
            raise ValueError(f"num_test_crops must be 1 or 3, got {num_crops}")
        clip = _to_tchw(frames)
        height, width = clip.shape[-2:]
        side = min(height, min(width, round(self.crop_size * min(height, width) / self.short_side)))
        top, left = (height - side) // 2, (width - side) // 2
        if num_crops == 1:
            boxes = [(top, left, side, side)]
        elif width >= height:
            boxes = [(top, x, side, side) for x in (0, left, width - side)]
        else:
            boxes = [(y, left, side, side) for y in (0, top, height - side)]
        return [_resize_crop(clip, box, self.crop_size) for box in boxes]


TRAIN_CROPS = ("multi_scale", "random_resized", "center")


@dataclass(frozen=True)
class TrainClipTransform:
    """Training augmentation: a random crop, resized to ``crop_size``, then a random flip.

    ``crop='random_resized'`` draws an area fraction in ``scale`` and an aspect ratio in
    3/4..4/3 (Inception style); ``crop='multi_scale'`` is TSN's: the side of the crop is the
    short side times one of ``(1, .875, .75, .66)`` for each of height and width, at a random
    position; ``crop='center'`` takes no random crop, only the centre square of the short side
    (the evaluation view: whole frames when they are square). ``flip=False`` keeps left and
    right (for direction-sensitive data).
    """

    crop_size: int = 224
    crop: str = "multi_scale"
    scale: tuple[float, float] = (0.25, 1.0)
    flip: bool = True

    def __post_init__(self) -> None:
        if self.crop not in TRAIN_CROPS:
            raise ValueError(f"crop must be one of {TRAIN_CROPS}, got {self.crop!r}")

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = _to_tchw(frames)
        box = self.random_box(*clip.shape[-2:], rng)
        clip = _resize_crop(clip, box, self.crop_size)
        if self.random_flip(rng):
            clip = clip.flip(-1)
        return clip

    def random_box(self, height: int, width: int, rng: np.random.Generator) -> Box:
        """A random crop box ``(top, left, height, width)`` in a ``height x width`` frame."""
        if self.crop == "random_resized":
            return self._random_resized_box(height, width, rng)
        if self.crop == "center":
            side = min(height, width)
            return (height - side) // 2, (width - side) // 2, side, side
        return self._multi_scale_box(height, width, rng)

    def random_flip(self, rng: np.random.Generator) -> bool:
        return self.flip and rng.random() < 0.5

    def _random_resized_box(self, height: int, width: int, rng: np.random.Generator) -> Box:
        area = height * width
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w = round(math.sqrt(target * ratio))
            h = round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                return (
                    int(rng.integers(0, height - h + 1)),
                    int(rng.integers(0, width - w + 1)),
                    h,
                    w,
                )
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side

    def _multi_scale_box(self, height: int, width: int, rng: np.random.Generator) -> Box:
        base = min(height, width)
        scales = (1.0, 0.875, 0.75, 0.66)
        h = max(1, round(base * scales[rng.integers(len(scales))]))
        w = max(1, round(base * scales[rng.integers(len(scales))]))
        return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w


@dataclass(frozen=True)
class CoverResizeTransform:
    """Resize to cover ``height x width`` and take the centre: every clip gets one fixed size,
    so a batch can be cropped on the device. No resize when frames already have that size."""

    height: int = 256
    width: int = 340

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = _to_tchw(frames)
        height, width = clip.shape[-2:]
        if (height, width) == (self.height, self.width):
            return clip  # a view: the batch collation makes the one copy
        scale = max(self.height / height, self.width / width)
        box_h = min(height, round(self.height / scale))
        box_w = min(width, round(self.width / scale))
        box = ((height - box_h) // 2, (width - box_w) // 2, box_h, box_w)
        return F.resized_crop(clip, *box, [self.height, self.width], antialias=True)
