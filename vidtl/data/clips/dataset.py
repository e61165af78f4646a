"""Map-style dataset of video clips, robust to broken files."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.sampling import FrameSampler
from vidtl.data.clips.skipped_videos import SkippedVideoLog
from vidtl.data.clips.transforms import ClipTransform, EvalClipTransform
from vidtl.data.frames.reader import VideoReader
from vidtl.data.frames.sources import FrameSource, VideoFileSource

log = logging.getLogger(__name__)

class VideoClipDataset(Dataset):
    """Clips of ``records``: sample indices, decode only those frames, transform to uint8.

    Frames come from ``source``: the video files (decord by default) or a frame store.

    Returns ``(clip, label)`` with ``clip`` uint8 ``(T, C, H, W)``. A video that cannot be read
    is logged to ``skipped``, remembered, and replaced by the next readable one, so a broken file
    never ends a run. Evaluation (``training=False``) is deterministic.

    With ``views=(num_clips, num_crops)`` (multi-view testing; ``transform`` must be an
    :class:`~vidtl.data.clips.transforms.EvalClipTransform`) an item is ``(views, label, video)``:
    ``views`` uint8 ``(num_clips * num_crops, T, C, H, W)``, clip-major, and ``video`` the
    position of the video actually read, so a replaced broken video is not counted twice.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        sampler: FrameSampler,
        transform: ClipTransform,
        training: bool,
        source: FrameSource | None = None,
        skipped: SkippedVideoLog | None = None,
        max_replacements: int = 100,
        views: tuple[int, int] | None = None,
    ) -> None:
        if not records:
            raise ValueError("a VideoClipDataset needs at least one video")
        self.records = records
        self.sampler = sampler
        self.transform = transform
        self.training = training
        self.source = source or VideoFileSource()
        self.skipped = skipped or SkippedVideoLog(None)
        self.max_replacements = max_replacements
        if views is not None and (training or not isinstance(transform, EvalClipTransform)):
            raise ValueError("multi-view items are for evaluation with an EvalClipTransform")
        self.views = views
        self._bad: set[int] = set()
        self._rng: np.random.Generator | None = None
        self._rng_pid: int | None = None

    def __len__(self) -> int:
        return len(self.records)

    def _generator(self) -> np.random.Generator:
        # Seeded from torch's per-worker seed, so seed_everything(workers=True) makes runs repeat.
        if self._rng is None or self._rng_pid != os.getpid():
            self._rng = np.random.default_rng(torch.initial_seed())
            self._rng_pid = os.getpid()
        return self._rng

    def load_clip(self, record: VideoRecord, rng: np.random.Generator) -> torch.Tensor:
        """Decode and transform one clip of ``record`` (raises on a broken file)."""
        reader = self.source.open(record.path)
        first, length = 0, len(reader)
        if record.start_sec is not None:
            first = min(int(record.start_sec * reader.fps), length - 1)
        if record.end_sec is not None:
            length = max(min(int(record.end_sec * reader.fps), length), first + 1)
        if self.views is not None:
            return self._load_views(reader, first, length)
        indices = first + self.sampler(length - first, self.training, rng)
        return self.transform(reader.get_frames(indices), rng)

    def _load_views(self, reader: VideoReader, first: int, length: int) -> torch.Tensor:
        assert self.views is not None and isinstance(self.transform, EvalClipTransform)
        num_clips, num_crops = self.views
        clips = [first + indices for indices in self.sampler.views(length - first, num_clips)]
        unique, inverse = np.unique(np.concatenate(clips), return_inverse=True)
        frames = reader.get_frames(unique)[inverse.reshape(-1)]  # one pass for all clips
        views = []
        for k in range(num_clips):
            clip = frames[k * len(clips[0]):(k + 1) * len(clips[0])]
            views.extend(self.transform.crops(clip, num_crops))
        return torch.stack(views)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rng = self._generator() if self.training else np.random.default_rng(index)
        return self._load(index, rng)

    def batch_generators(self, indices: list[int]) -> list[np.random.Generator]:
        """One generator per clip of a batch: seeds drawn in order from this process's
        generator in training, the clip's index in evaluation (as :meth:`__getitem__`)."""
        if not self.training:
            return [np.random.default_rng(index) for index in indices]
        seeds = self._generator().integers(2**63, size=len(indices)).tolist()
        return [np.random.default_rng(seed) for seed in seeds]

    def load_batch(self, indices: list[int], generators: list[np.random.Generator]
                   ) -> list[tuple[torch.Tensor, int]]:
        """The clips of ``indices``, each drawn with its generator (see ThreadedDataLoader)."""
        return [self._load(i, rng) for i, rng in zip(indices, generators, strict=True)]

    def _load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        for attempt in range(min(self.max_replacements, len(self.records))):
            position = (index + attempt) % len(self.records)
            if position in self._bad:
                continue
            record = self.records[position]
            try:
                if self.views is not None:
                    return self.load_clip(record, rng), record.label, position
                return self.load_clip(record, rng), record.label
            except Exception as error:  # any failure of one file must not end the run
                self._bad.add(position)
                self.skipped.add(record.path, f"{type(error).__name__}: {error}")
        raise RuntimeError(
            f"no readable video among {min(self.max_replacements, len(self.records))} tried from "
            f"index {index} (first: {self.records[index].path}); see the skipped-videos log"
        )
