"""The decord backend (``data.backend=decord``, the default): seeks and decodes only the frames
asked for (``get_batch``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vidtl.data.frames.decoder_registry import DECODERS
from vidtl.data.frames.pyav_reader import PyAVReader
from vidtl.data.frames.reader import VideoDecodeError, frames_one_by_one, import_decoder

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
        except Exception:
            frames = frames_one_by_one(self.path, lambda i: self._reader[i].asnumpy(), indices)
        if frames.shape[-1] != 3:
            # decord2 3.4 returns scrambled 4-channel frames for some sizes (e.g. 48x32, 96x64).
            log.warning("%s: decord returned frames of shape %s; decoding this file with PyAV",
                        self.path, frames.shape[1:])
            self._fallback = PyAVReader(self.path)
            return self._fallback.get_frames(indices)
        return frames
