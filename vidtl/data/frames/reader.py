"""What the clip pipeline needs of a decoder: the :class:`VideoReader` protocol and its error.

Readers are opened inside the worker that uses them (never pickled) and decode only the frames
asked for. Indices past the last decodable frame are answered with the last decodable frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


class VideoDecodeError(RuntimeError):
    """A video cannot be opened or decoded."""


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
    except VideoDecodeError:
        raise
    except Exception as error:
        raise VideoDecodeError(f"{video}: cannot {action}: {error}") from None
