"""Where a dataset's frames come from (``data.source``): the video files, a frame store, or a
source of your own.

A frame source opens a :class:`~vidtl.data.frames.reader.VideoReader` for an annotated video.
Sources are registered by name as builders ``(SourceOptions) -> FrameSource``; a config with
``_target_`` gives any object with an ``open(video)`` method instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidtl.core.errors import UserError
from vidtl.core.registry import Registry
from vidtl.data.frames.decoder_registry import ReaderFactory
from vidtl.data.frames.decoders import check_decoder, open_video
from vidtl.data.frames.encoded_frames import EncodedFrameStoreReader
from vidtl.data.frames.frame_store import FrameStoreReader, frame_file_path
from vidtl.data.frames.prepared_folder import read_manifest
from vidtl.data.frames.reader import VideoReader


class FrameSource(Protocol):
    """Opens a reader for one annotated video."""

    def open(self, video: Path) -> VideoReader: ...


@dataclass(frozen=True)
class SourceOptions:
    """What the built-in sources are made from: the dataset root, the frame store's folder and
    the decoder (name or factory) with its threads."""

    data_root: Path
    frames_root: Path | None = None
    backend: str | ReaderFactory = "decord"
    decode_threads: int = 1


SourceBuilder = Callable[[SourceOptions], FrameSource]
SOURCES: Registry[SourceBuilder] = Registry("frame source", "data.source")


@dataclass(frozen=True)
class VideoFileSource:
    """Decode the video files with ``backend`` (``decord``, ``pyav`` or a reader factory)."""

    backend: str | ReaderFactory = "decord"
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
    """Read the frames' JPEG bytes from the store, for decoding on the device (the loading
    plan swaps it in for a :class:`FrameStoreSource` with ``data.decode_on=device``)."""

    def open(self, video: Path) -> VideoReader:
        return EncodedFrameStoreReader(frame_file_path(self.store_root, self.data_root, video))


@SOURCES.register("video")
def video_files(options: SourceOptions) -> FrameSource:
    """``data.source=video``: decode the videos themselves (the decoder checked first: a
    missing system library is one error at start, not every video broken)."""
    check_decoder(options.backend)
    return VideoFileSource(options.backend, options.decode_threads)


@SOURCES.register("frames")
def stored_frames(options: SourceOptions) -> FrameSource:
    """``data.source=frames``: the store at ``data.frames_root``."""
    if options.frames_root is None:
        raise UserError("data.source=frames needs data.frames_root=DIR (a store written by "
                        "vidtl-prepare mode=frames)")
    read_manifest(options.frames_root, expected_mode="frames")  # fails early on a wrong folder
    return FrameStoreSource(options.frames_root, options.data_root)


def build_source(source: str | FrameSource, options: SourceOptions) -> FrameSource:
    """The source called ``source`` (built from ``options``), or ``source`` itself."""
    if isinstance(source, str):
        return SOURCES.get(source)(options)
    return source
