"""JPEG decoding on the device (``data.decode_on=device``, frame store only).

The loader's workers read the sampled frames' JPEG bytes from the frame store and do not decode
them; a batch carries the bytes of all its frames in one tensor (:class:`EncodedClipBatch`).
Before the batch moves to the device, :func:`decode_clip_batch` decodes every frame with
``torchvision.io.decode_jpeg`` on that device (nvJPEG on a GPU, one batched call) and brings each
clip to one size there (the same per-clip transform the workers would run), so the CPU only
reads files. On a CPU the same code decodes with libjpeg-turbo in the main process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import default_collate

from vidtl.data.clips.batches import ClipBatch, ClipItem
from vidtl.data.frames.encoded_frames import EncodedClip


@dataclass(frozen=True)
class EncodedClipBatch:
    """The JPEG bytes of ``(B, T)`` frames: ``data`` holds them back to back, ``lengths[b, t]``
    is the size of frame ``t`` of clip ``b``."""

    data: torch.Tensor  # uint8 (sum of lengths,)
    lengths: torch.Tensor  # int64 (B, T)

    def __len__(self) -> int:
        return len(self.lengths)

    def frames(self) -> list[torch.Tensor]:
        """Each frame's bytes (views of ``data``), clip after clip."""
        return list(torch.split(self.data, self.lengths.reshape(-1).tolist()))


def keep_encoded(frames: EncodedClip, rng: np.random.Generator | None = None) -> EncodedClip:
    """The worker's clip transform with ``decode_on=device``: none."""
    return frames


def collate_encoded(items: Sequence[ClipItem]) -> ClipBatch:
    """Items of clip bytes to a :class:`~vidtl.data.clips.batches.ClipBatch` of one
    :class:`EncodedClipBatch` and the labels."""
    frames = [frame for clip, _ in items for frame in clip]
    lengths = torch.tensor([[len(frame) for frame in clip] for clip, _ in items],
                           dtype=torch.int64)
    labels = default_collate([label for _, label in items])  # indices, or multi-hot rows
    return ClipBatch(EncodedClipBatch(torch.cat(frames), lengths), labels)


FrameTransform = Callable[[torch.Tensor], torch.Tensor]  # (T, H, W, C) to (T, C, h, w)


def decode_clip_batch(batch: EncodedClipBatch, device: torch.device | str,
                      transform: FrameTransform) -> torch.Tensor:
    """Decode every frame on ``device`` and apply ``transform`` to each clip (deterministic
    transforms only: the resize to cover or the centre crop); uint8 ``(B, T, C, h, w)``."""
    from torchvision.io import ImageReadMode, decode_jpeg

    images = decode_jpeg(batch.frames(), mode=ImageReadMode.RGB, device=device)
    frames_per_clip = batch.lengths.shape[1]
    clips = []
    for start in range(0, len(images), frames_per_clip):
        clip = torch.stack(images[start:start + frames_per_clip])  # (T, C, H, W)
        clips.append(transform(clip.permute(0, 2, 3, 1)))
    return torch.stack(clips)
