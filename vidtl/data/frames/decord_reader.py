"""The decord backend (``data.backend=decord``, the default): seeks and decodes only the frames
asked for (``get_batch``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vidtl.data.frames.decoder_registry import DECODERS
from vidtl.data.frames.pyav_reader import PyAVReader
from vidtl.data.frames.reader import VideoDecodeError, import_decoder

log = logging.getLogger(__name__)
INSTALL = "data.backend=decord needs decord2: pip install decord2 (or data.backend=pyav)"


@DECODERS.register("decord")
class DecordReader:
    """decord ``VideoReader``: seeks to and decodes only the requested frames (``get_batch``)."""

    @staticmethod
    def check_available() -> None:
        """Before any video is read: decord (with the FFmpeg it bundles) loads, or one line."""
        import_decoder("decord", INSTALL)

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import decord

        self.path = Path(path)
        self.num_threads = num_threads
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            self._reader = decord.VideoReader(str(self.path), num_threads=num_threads)
        except Exception as error:  # decord raises its own DECORDError and RuntimeError
            if "cannot find video stream" in str(error):
                raise VideoDecodeError(f"{self.path}: no video stream (audio only?)") from None
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
        except Exception as error:
            # A file decord cannot decode throughout (a cut file, a broken packet): decord's
            # threaded decoder then fails at random frames, even the first, when the machine is
            # busy. PyAV decodes it in order, the same each time, and says which frames failed.
            log.debug("%s: decord failed (%s); decoding this file with PyAV", self.path, error)
            self._fallback = PyAVReader(self.path, self.num_threads)
            return self._fallback.get_frames(indices)
        if frames.shape[-1] != 3:
            # decord2 3.4 returns scrambled 4-channel frames for some sizes (e.g. 48x32, 96x64).
            log.warning("%s: decord returned frames of shape %s; decoding this file with PyAV",
                        self.path, frames.shape[1:])
            self._fallback = PyAVReader(self.path)
            return self._fallback.get_frames(indices)
        return frames
