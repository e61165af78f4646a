"""Batches of the test views of arbitrary videos, with the broken ones reported, not replaced.

Prediction and feature extraction run on videos outside any dataset: each video gets the views
of the checkpoint's test protocol (``num_clips`` x ``num_crops``), and a file that cannot be
read is returned as an error for its caller to report while the others go on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.pipeline import ClipPipeline


@dataclass(frozen=True)
class FileViewsBatch:
    """The readable videos of one batch (their positions and uint8 views ``(B, V, T, C, H,
    W)``) and the unreadable ones (position, reason)."""

    videos: list[int]
    views: torch.Tensor | None
    errors: list[tuple[int, str]]


class VideoViews(Dataset):
    """Item ``i``: ``(i, views, "")`` for video ``paths[i]``, or ``(i, None, reason)``."""

    def __init__(self, paths: Sequence[Path], clips: VideoClipDataset) -> None:
        self.paths = list(paths)
        self.clips = clips

    @classmethod
    def from_pipeline(cls, paths: Sequence[Path], pipeline: ClipPipeline) -> VideoViews:
        """The test views of ``pipeline`` (a run's clip pipeline, its test protocol chosen)."""
        records = [VideoRecord(Path(p), -1) for p in paths]
        return cls(paths, pipeline.dataset(records, "test"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            views = self.clips.load_clip(self.clips.records[index], np.random.default_rng(index))
        except Exception as error:  # reported by the caller; the other videos go on
            return index, None, f"{type(error).__name__}: {' '.join(str(error).split())}"
        return index, views, ""


def _keep(items: list) -> list:
    return items


def view_batches(dataset: VideoViews, batch_size: int, num_workers: int,
                 progress: bool) -> Iterator[FileViewsBatch]:
    """The dataset's videos in order, ``batch_size`` at a time, with a progress bar."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=_keep)
    with tqdm(total=len(dataset), unit="video", disable=not progress, dynamic_ncols=True) as bar:
        for items in loader:
            good = [(i, v) for i, v, error in items if not error]
            yield FileViewsBatch([i for i, _ in good],
                            torch.stack([v for _, v in good]) if good else None,
                            [(i, error) for i, _, error in items if error])
            bar.update(len(items))
