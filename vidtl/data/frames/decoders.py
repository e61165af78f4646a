"""Opening a video with a decoder backend: the built-in ones (decord, PyAV, torchcodec) or any
registered or given by ``_target_``."""

from __future__ import annotations

from pathlib import Path

from vidtl.core.safe_files import RefusedFileError, check_regular
from vidtl.data.frames import (  # noqa: F401 (they register)
    decord_reader,
    pyav_reader,
    torchcodec_reader,
)
from vidtl.data.frames.decoder_registry import DECODERS, ReaderFactory
from vidtl.data.frames.reader import VideoDecodeError, VideoReader


def resolve_decoder(backend: str | ReaderFactory) -> ReaderFactory:
    """The backend called ``backend``, or ``backend`` itself when it is a factory already."""
    return DECODERS.get(backend) if isinstance(backend, str) else backend


def check_decoder(backend: str | ReaderFactory) -> None:
    """Fail at once, with one line naming what to install, when ``backend`` cannot run here (a
    reader that declares ``check_available``: decord, PyAV, and torchcodec for FFmpeg)."""
    factory = resolve_decoder(backend)
    check = getattr(getattr(factory, "func", factory), "check_available", None)  # or a partial
    if callable(check):
        check()


def open_video(path: str | Path, backend: str | ReaderFactory = "decord",
               num_threads: int = 1) -> VideoReader:
    """Open ``path`` with ``backend`` (a registered name such as ``decord`` or ``pyav``, or a
    reader factory)."""
    factory = resolve_decoder(backend)
    path = Path(path)
    try:
        check_regular(path, "video")  # never a FIFO or device, which could block the decoder
    except FileNotFoundError:
        raise VideoDecodeError(f"{path}: no such file") from None
    except (RefusedFileError, OSError) as error:
        raise VideoDecodeError(f"{path}: {error}") from None
    return factory(path, num_threads=num_threads)
