"""The PyAV backend (``data.backend=pyav``): decodes sequentially up to the last frame asked
for; slower for sparse access into long videos, but it reads files decord rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidtl.data.frames.decoder_registry import DECODERS
from vidtl.data.frames.reader import PartialDecodeError, VideoDecodeError, import_decoder

INSTALL = "data.backend=pyav needs PyAV: pip install av"


@DECODERS.register("pyav")
class PyAVReader:
    """PyAV backend: decodes sequentially up to the last requested frame.

    Slower for sparse access into long videos, but it reads files decord rejects.
    """

    @staticmethod
    def check_available() -> None:
        """Before any video is read: PyAV (with the FFmpeg it bundles) loads, or one line."""
        import_decoder("av", INSTALL)

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        import av

        self.path = Path(path)
        self.num_threads = num_threads
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise VideoDecodeError(f"{self.path}: no video stream (audio only?)")
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
        # Indices past the real end (a header that overstates the length) get the last frame,
        # and the caller is told (PartialDecodeError).
        tail = frames.get(i) if i in frames else previous.to_ndarray(format="rgb24")
        clip = np.stack([frames.get(index, tail) for index in indices.tolist()])
        missing = sum(1 for index in indices.tolist() if index not in frames)
        if missing:
            raise PartialDecodeError(self.path, len(indices) - missing, len(indices), clip)
        return clip
