"""The device stage: everything that happens to a batch on the training device, in one place.

Called once per batch from the LightningModule's ``transfer_batch_to_device`` hook (and by the
throughput tools directly), it runs, in order:

1. decode, when the loader left a frame store's JPEG bytes undecoded (``data.decode_on=device``:
   nvJPEG on a GPU), bringing each clip to the loader's size; otherwise the uint8 batch is
   copied to the device (without blocking when it is pinned);
2. crop and flip, in training with ``data.augment_on=device``: each clip gets its own random box
   (the same boxes :class:`~vidtl.data.clips.transforms.TrainClipTransform` draws), cropped and
   resized in one ``roi_align`` call for the batch, then flipped where drawn;
3. normalise with the backbone's mean and std.

Only a :class:`~vidtl.data.clips.batches.ClipBatch` goes through steps 2 and 3. A
:class:`~vidtl.data.clips.batches.ViewsBatch` (the multi-view test) is only moved: its views are
normalised chunk by chunk (:meth:`DeviceStage.normalize`) while they are scored, to bound
memory; a :class:`~vidtl.data.clips.batches.FeatureBatch` (cached frame features) is only moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.ops import roi_align

from vidtl.data.clips.batches import ClipBatch, FeatureBatch, ViewsBatch
from vidtl.data.clips.transforms import TrainClipTransform
from vidtl.data.loading.encoded_batches import EncodedClipBatch, FrameTransform, decode_clip_batch

Batch = ClipBatch | ViewsBatch | FeatureBatch


@dataclass
class DeviceStage:
    """Decode (optional) -> crop and flip (optional, training) -> normalise.

    ``augment`` is the training transform whose boxes and flips run on the device (``None``:
    the loader did them). ``decode_train`` and ``decode_eval`` bring decoded JPEG clips to the
    loader's size (needed only with ``decode_on=device``).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: TrainClipTransform | None = None
    decode_train: FrameTransform | None = None
    decode_eval: FrameTransform | None = None
    _constants: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False)

    def __call__(self, batch: Batch, device: torch.device | str, training: bool,
                 rng: np.random.Generator | None = None) -> Batch:
        """The loader's batch on ``device``, ready for the model (see the module docstring)."""
        batch = self.to_device(batch, device, training)
        if not isinstance(batch, ClipBatch):  # views and features: only moved
            return batch
        clips = batch.clips
        if training and self.augment is not None:
            clips = self.crop_and_flip(clips, rng or np.random.default_rng())
        return batch._replace(clips=self.normalize(clips))

    def to_device(self, batch: Batch, device: torch.device | str, training: bool) -> Batch:
        """Step 1 alone: the batch on ``device`` (of the same type) with its clips as uint8,
        decoded there when the loader left JPEG bytes."""
        if not isinstance(batch, ClipBatch | ViewsBatch | FeatureBatch):
            raise TypeError(f"the device stage takes a ClipBatch, ViewsBatch or FeatureBatch "
                            f"(vidtl.data.clips.batches), got {type(batch).__name__}")
        device = torch.device(device)
        first, *rest = batch
        rest = [r.to(device, non_blocking=True) if torch.is_tensor(r) else r for r in rest]
        if isinstance(first, EncodedClipBatch):
            transform = self.decode_train if training else self.decode_eval
            if transform is None:
                raise ValueError("an undecoded batch reached a device stage without decode "
                                 "transforms (data.decode_on=device)")
            return type(batch)(decode_clip_batch(first, device, transform), *rest)
        return type(batch)(first.to(device, non_blocking=True), *rest)

    def normalize(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 (or float in 0..255) ``(..., C, H, W)`` to float, scaled to [0, 1] and
        standardised. A float input is modified in place."""
        mean, std = self._on(clips.device)
        clips = clips.float().div_(255.0)
        return clips.sub_(mean).div_(std)

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._constants:
            self._constants[device] = (torch.tensor(self.mean, device=device).view(-1, 1, 1),
                                       torch.tensor(self.std, device=device).view(-1, 1, 1))
        return self._constants[device]

    def crop_and_flip(self, clips: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``(B, T, C, H, W)`` to float ``(B, T, C, crop, crop)`` in 0..255."""
        assert self.augment is not None
        batch, frames, channels, height, width = clips.shape
        rois, flips = [], []
        for index in range(batch):
            top, left, box_h, box_w = self.augment.random_box(height, width, rng)
            rois.append((index, left, top, left + box_w, top + box_h))
            flips.append(self.augment.random_flip(rng))
        size = self.augment.crop_size
        boxes = torch.tensor(rois, dtype=torch.float32, device=clips.device)
        planes = clips.reshape(batch, frames * channels, height, width).float()
        out = roi_align(planes, boxes, size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        out = out.reshape(batch, frames, channels, size, size)
        flip = torch.tensor(flips, device=clips.device)
        return torch.where(flip.view(-1, 1, 1, 1, 1), out.flip(-1), out)
