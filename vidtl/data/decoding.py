"""Video decoders: the :class:`VideoReader` protocol, a decord backend and a PyAV backend.

Readers are opened inside the worker that uses them (never pickled) and decode only the frames
asked for. Both backends cope with headers that overstate the frame count: indices past the last
decodable frame are answered with the last decodable frame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

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


class DecordReader:
    """decord ``VideoReader``: seeks to and decodes only the requested frames (``get_batch``)."""

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import decord

        self.path = Path(path)
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            self._reader = decord.VideoReader(str(self.path), num_threads=num_threads)
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            raise VideoDecodeError(f"{self.path}: cannot open: {error}") from None
        self._length = len(self._reader)
        if self._length == 0:
            raise VideoDecodeError(f"{self.path}: no video frames")
        self.fps = float(self._reader.get_avg_fps() or 25.0)
        self._fallback: PyAVReader | None = None

    def __len__(self) -> int:
        return self._length

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        indices = np.clip(np.asarray(indices, dtype=np.int64), 0, self._length - 1)
        if self._fallback is not None:
            return self._fallback.get_frames(indices)
        try:
            frames = self._reader.get_batch(indices.tolist()).asnumpy()
        except Exception:
            frames = self._get_frames_one_by_one(indices)
        if frames.shape[-1] != 3:
            # decord2 3.4 returns scrambled 4-channel frames for some sizes (e.g. 48x32, 96x64).
            log.warning("%s: decord returned frames of shape %s; decoding this file with PyAV",
                        self.path, frames.shape[1:])
            self._fallback = PyAVReader(self.path)
            return self._fallback.get_frames(indices)
        return frames

    def _get_frames_one_by_one(self, indices: np.ndarray) -> np.ndarray:
        """Slow path for files whose header promises frames that cannot be decoded."""
        frames: dict[int, np.ndarray] = {}
        last_good: np.ndarray | None = None
        for index in sorted(set(indices.tolist())):
            try:
                frame = self._reader[index].asnumpy()
                last_good = frame
            except Exception:
                if last_good is None:
                    last_good = self._last_decodable_before(index)
                frame = last_good
            frames[index] = frame
        return np.stack([frames[i] for i in indices.tolist()])

    def _last_decodable_before(self, index: int) -> np.ndarray:
        for candidate in range(min(index, self._length) - 1, -1, -1):
            try:
                frame = self._reader[candidate].asnumpy()
            except Exception:
                continue
            self._length = candidate + 1
            return frame
        raise VideoDecodeError(f"{self.path}: no decodable frame")


class PyAVReader:
    """PyAV backend: decodes sequentially up to the last requested frame.

    Slower for sparse access into long videos, but it reads files decord rejects.
    """

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import av

        self.path = Path(path)
        self.num_threads = num_threads
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoDecodeError(f"{self.path}: no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                self.fps = float(rate) if rate else 25.0
                self._length = int(stream.frames or 0)
        except VideoDecodeError:
            raise
        except Exception as error:
            raise VideoDecodeError(f"{self.path}: cannot open: {error}") from None
        if self._length == 0:  # no count in the header: count by decoding
            self._length = sum(1 for _ in self._decoded_frames())
            if self._length == 0:
                raise VideoDecodeError(f"{self.path}: no video frames")

    def __len__(self) -> int:
        return self._length

    def _decoded_frames(self):
        """Decoded ``av.VideoFrame`` objects in order; stops quietly at a broken tail."""
        import av

        yielded = False
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                stream.thread_count = self.num_threads
                for frame in container.decode(stream):
                    yielded = True
                    yield frame
        except Exception as error:
            if not yielded:
                raise VideoDecodeError(f"{self.path}: cannot decode: {error}") from None

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        indices = np.clip(np.asarray(indices, dtype=np.int64), 0, self._length - 1)
        wanted = set(indices.tolist())
        last = max(wanted)
        frames: dict[int, np.ndarray] = {}
        previous = None
        for i, frame in enumerate(self._decoded_frames()):
            previous = frame
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
        if previous is None:
            raise VideoDecodeError(f"{self.path}: no decodable frame")
        # Indices past the real end (a header that overstates the length) get the last frame.
        tail = frames.get(i) if i in frames else previous.to_ndarray(format="rgb24")
        return np.stack([frames.get(index, tail) for index in indices.tolist()])


BACKENDS = {"decord": DecordReader, "pyav": PyAVReader}


def open_video(path: str | Path, backend: str = "decord", num_threads: int = 1) -> VideoReader:
    """Open ``path`` with the named backend (``decord`` or ``pyav``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder backend {backend!r}; known: {sorted(BACKENDS)}")
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: no such file")
    return BACKENDS[backend](path, num_threads=num_threads)
