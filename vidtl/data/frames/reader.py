"""What the clip pipeline needs of a decoder: the :class:`VideoReader` protocol and its error.

Readers are opened inside the worker that uses them (never pickled) and decode only the frames
asked for. A reader never patches a clip silently: when some frames asked for cannot be
decoded (a broken packet, a header that promises more frames than the file holds), it raises
:class:`PartialDecodeError`, which carries the clip with those frames replaced by the nearest
earlier decodable one; the dataset's ``on_decode_error`` policy decides what happens then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from vidtl.core.atomic import DiskFullError
from vidtl.core.errors import UserError


class DecoderUnavailableError(UserError):
    """A decoder backend cannot run on this machine (its package or a system library is
    missing): one error at the start of a run, never every video "broken"."""


def import_decoder(module: str, install: str):
    """Import a decoder's package, or raise :class:`DecoderUnavailableError` saying ``install``
    (a native library that fails to load raises ``OSError`` or ``RuntimeError``, not
    ``ImportError``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DecoderUnavailableError(f"{install} ({first})") from None


class VideoDecodeError(RuntimeError):
    """A video cannot be opened or decoded."""


class PartialDecodeError(VideoDecodeError):
    """Only ``decoded`` of the ``requested`` frames could be decoded; ``frames`` is the clip with
    the others replaced by the nearest earlier decodable frame."""

    def __init__(self, video: Path, decoded: int, requested: int, frames: np.ndarray) -> None:
        super().__init__(f"{video}: decoded {decoded} of {requested} frames")
        self.video, self.decoded, self.requested, self.frames = video, decoded, requested, frames

    @property
    def reason(self) -> str:
        return f"decoded {self.decoded} of {self.requested} frames"

    def __reduce__(self):  # survives the trip from a loader worker
        return type(self), (self.video, self.decoded, self.requested, self.frames)


@runtime_checkable
class VideoReader(Protocol):
    """What the dataset needs of a decoder."""

    fps: float

    def __len__(self) -> int: ...

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        """uint8 frames ``(len(indices), H, W, 3)`` in RGB, in the order asked."""
        ...


@contextmanager
def decode_errors_named(video: Path, action: str) -> Iterator[None]:
    """Raise any failure inside the block (PyAV's errors on a broken or truncated file) as a
    :class:`VideoDecodeError` that names ``video`` and what was being done."""
    try:
        yield
    except (VideoDecodeError, DiskFullError):  # a full disk is not the video's fault
        raise
    except Exception as error:
        raise VideoDecodeError(f"{video}: cannot {action}: {error}") from None


def frames_one_by_one(video: Path, read: Callable[[int], np.ndarray],
                      indices: np.ndarray) -> np.ndarray:
    """The frames ``indices`` of ``video``, each decoded by ``read(index)``: the slow path for
    files whose header promises frames that cannot be decoded. A frame that fails is replaced
    by the last decodable one before it, and :class:`PartialDecodeError` says so."""
    frames: dict[int, np.ndarray] = {}
    failed: set[int] = set()
    last_good: np.ndarray | None = None
    for index in sorted(set(indices.tolist())):
        try:
            last_good = read(index)
        except Exception:
            failed.add(index)
            if last_good is None:
                last_good = _last_decodable_before(video, read, index)
        frames[index] = last_good
    clip = np.stack([frames[i] for i in indices.tolist()])
    if failed:
        missing = sum(1 for i in indices.tolist() if i in failed)
        raise PartialDecodeError(video, len(indices) - missing, len(indices), clip)
    return clip


def _last_decodable_before(video: Path, read: Callable[[int], np.ndarray],
                           index: int) -> np.ndarray:
    for candidate in range(index - 1, -1, -1):
        try:
            return read(candidate)
        except Exception:
            continue
    raise VideoDecodeError(f"{video}: no decodable frame")
