"""Map-style dataset of video clips, robust to broken files."""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import torch
from torch.utils.data import Dataset

from vidtl.core.errors import UserError
from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.batches import ClipItem, ViewsItem
from vidtl.data.clips.clip_settings import ClipSettings
from vidtl.data.clips.sampling import FrameSampler
from vidtl.data.clips.skipped_videos import REPLACED, SkippedVideoLog
from vidtl.data.clips.transforms import ClipTransform, EvalClipTransform
from vidtl.data.frames.reader import PartialDecodeError, VideoReader
from vidtl.data.frames.sources import FrameSource, VideoFileSource

log = logging.getLogger(__name__)

DECODE_ERROR_POLICIES = ("replace", "skip", "fail")


class NoReadableVideoError(UserError):
    """Every video tried in a row failed: the data, or the decoder, is broken throughout."""


class DecodeFailedError(UserError):
    """``data.on_decode_error=fail``: a video could not be decoded, and the run stops."""


class VideoClipDataset(Dataset):
    """Clips of ``records``: sample indices, decode only those frames, transform to uint8.

    Frames come from ``source``: the video files (decord by default) or a frame store.

    Returns ``(clip, label)`` with ``clip`` uint8 ``(T, C, H, W)``; with ``multi_hot_classes``
    (a multi-label dataset) the label is a float32 multi-hot vector of that many classes: for a
    clip, the labels whose spans its frames overlap (:meth:`VideoRecord.labels_between`), for
    test views every label of the video. A video that cannot be read
    is logged to ``skipped``, remembered, and replaced by the next readable one, so a broken file
    never ends a run. A clip of which only some frames decode follows ``on_decode_error``:
    ``replace`` (the default) keeps it with the missing frames replaced by the nearest earlier
    decodable one and lists the video (``decoded 5 of 8 frames``) once; ``skip`` treats the
    video as unreadable; ``fail`` stops the run at the first video that does not decode whole.
    Evaluation (``training=False``) is deterministic.

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
        on_decode_error: str = ClipSettings.on_decode_error,
        multi_hot_classes: int | None = None,
    ) -> None:
        if not records:
            raise ValueError("a VideoClipDataset needs at least one video")
        if on_decode_error not in DECODE_ERROR_POLICIES:
            raise UserError(f"data.on_decode_error must be one of {DECODE_ERROR_POLICIES}, got "
                            f"{on_decode_error!r}")
        self.on_decode_error = on_decode_error
        self._partly_decoded: set[str] = set()
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
        self.multi_hot_classes = multi_hot_classes
        self._spans: dict[int, tuple[float, float] | None] = {}  # per thread: the last clip's
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
        """Decode and transform one clip of ``record`` (raises on a broken file). The seconds
        its frames span are kept for its multi-label target (an override that does not call
        this one gets the video's labels)."""
        clip, span = self._clip_and_span(record, rng)
        self._spans[threading.get_ident()] = span
        return clip

    def _target(self, record: VideoRecord, span: tuple[float, float] | None
                ) -> int | torch.Tensor:
        """The label of a clip of ``record`` covering ``span`` seconds (``None``: the whole
        video): the class index, or the multi-hot vector of a multi-label dataset."""
        if self.multi_hot_classes is None:
            return record.label
        target = torch.zeros(self.multi_hot_classes, dtype=torch.float32)
        labels = record.labels() if span is None else record.labels_between(*span)
        target[labels] = 1.0
        return target

    def _clip_and_span(self, record: VideoRecord, rng: np.random.Generator
                       ) -> tuple[torch.Tensor, tuple[float, float] | None]:
        reader = self.source.open(record.path)
        first, length = 0, len(reader)
        if record.start_sec is not None:
            first = min(int(record.start_sec * reader.fps), length - 1)
        if record.end_sec is not None:
            length = max(min(int(record.end_sec * reader.fps), length), first + 1)
        if self.views is not None:
            return self._load_views(reader, first, length, record), None
        indices = first + self.sampler(length - first, self.training, rng)
        clip = self.transform(self._frames(reader, indices, record), rng)
        fps = float(reader.fps) if self.multi_hot_classes is not None else 0.0
        span = ((int(indices.min()) / fps, (int(indices.max()) + 1) / fps)
                if fps > 0 else None)
        return clip, span

    def _frames(self, reader: VideoReader, indices: np.ndarray,
                record: VideoRecord) -> np.ndarray:
        """The frames at ``indices``; a partly decoded clip follows ``on_decode_error``."""
        try:
            return reader.get_frames(indices)
        except PartialDecodeError as error:
            if self.on_decode_error != "replace":
                raise
            if str(record.path) not in self._partly_decoded:  # listed once per process
                self._partly_decoded.add(str(record.path))
                self.skipped.add(record.path, error.reason, REPLACED)
            return error.frames

    def _load_views(self, reader: VideoReader, first: int, length: int,
                    record: VideoRecord) -> torch.Tensor:
        assert self.views is not None and isinstance(self.transform, EvalClipTransform)
        num_clips, num_crops = self.views
        clips = [first + indices for indices in self.sampler.views(length - first, num_clips)]
        unique, inverse = np.unique(np.concatenate(clips), return_inverse=True)
        frames = self._frames(reader, unique, record)[inverse.reshape(-1)]  # one pass for all
        views = []
        for k in range(num_clips):
            clip = frames[k * len(clips[0]):(k + 1) * len(clips[0])]
            views.extend(self.transform.crops(clip, num_crops))
        return torch.stack(views)

    def __getitem__(self, index: int) -> ClipItem | ViewsItem:
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
                   ) -> list[ClipItem | ViewsItem]:
        """The clips of ``indices``, each drawn with its generator (see ThreadedDataLoader)."""
        return [self._load(i, rng) for i, rng in zip(indices, generators, strict=True)]

    def _load(self, index: int, rng: np.random.Generator) -> ClipItem | ViewsItem:
        for attempt in range(min(self.max_replacements, len(self.records))):
            position = (index + attempt) % len(self.records)
            if position in self._bad:
                continue
            record = self.records[position]
            try:
                self._spans[threading.get_ident()] = None
                clip = self.load_clip(record, rng)
                target = self._target(record, self._spans.pop(threading.get_ident(), None))
                if self.views is not None:
                    return ViewsItem(clip, target, position)
                return ClipItem(clip, target)
            except Exception as error:  # any failure of one file must not end the run
                if self.on_decode_error == "fail":
                    raise DecodeFailedError(
                        f"{record.path}: {error} (data.on_decode_error=fail; replace or skip "
                        f"keep the run going and list the video)") from None
                self._bad.add(position)
                self.skipped.add(record.path, f"{type(error).__name__}: {error}")
        raise NoReadableVideoError(
            f"no readable video among {min(self.max_replacements, len(self.records))} tried from "
            f"index {index} (first: {self.records[index].path}); see the skipped-videos log"
        )
