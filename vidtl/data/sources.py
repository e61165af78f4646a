"""Where a dataset's frames come from: the video files themselves or a prepared frame store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidtl.data.decoding import VideoReader, open_video
from vidtl.data.encoded_clips import EncodedFrameStoreReader
from vidtl.data.frame_store import FrameStoreReader, frame_file_path

SOURCES = ("video", "frames")


class FrameSource(Protocol):
    """Opens a reader for one annotated video."""

    def open(self, video: Path) -> VideoReader: ...


@dataclass(frozen=True)
class VideoFileSource:
    """Decode the video files (``decord`` or ``pyav``)."""

    backend: str = "decord"
    decode_threads: int = 1

    def open(self, video: Path) -> VideoReader:
        return open_video(video, self.backend, self.decode_threads)


@dataclass(frozen=True)
class FrameStoreSource:
    """Read frames from a store written by ``vidtl-prepare mode=frames`` for ``data_root``."""

    store_root: Path
    data_root: Path

    def open(self, video: Path) -> VideoReader:
        return FrameStoreReader(frame_file_path(self.store_root, self.data_root, video))


@dataclass(frozen=True)
class EncodedFrameStoreSource(FrameStoreSource):
    """Read the frames' JPEG bytes from the store, for decoding on the device."""

    def open(self, video: Path) -> VideoReader:
        return EncodedFrameStoreReader(frame_file_path(self.store_root, self.data_root, video))
