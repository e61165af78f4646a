"""The torchcodec backend (``data.backend=torchcodec``): PyTorch's own video decoder.

torchcodec (``pip install 'vidtl[torchcodec]'``) decodes through FFmpeg's shared libraries,
which come from the system (``apt-get install ffmpeg`` or ``conda install ffmpeg``; FFmpeg 4 to
8). It seeks to and decodes only the frames asked for, like decord. On the CPU by default; with
``device="cuda"`` (``data.backend={_target_: vidtl.data.frames.torchcodec_reader.TorchCodecReader,
_partial_: true, device: cuda}`` and ``data.num_workers=0``: CUDA does not run in forked loader
workers) it decodes with NVDEC, and says so when torchcodec falls back to the CPU for a file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vidtl.data.frames.decoder_registry import DECODERS
from vidtl.data.frames.reader import DecoderUnavailableError, VideoDecodeError, frames_one_by_one

log = logging.getLogger(__name__)
INSTALL = ("data.backend=torchcodec needs torchcodec and FFmpeg's shared libraries: pip install "
           "'vidtl[torchcodec]', and FFmpeg 4-8 from the system (apt-get install ffmpeg, or "
           "conda install ffmpeg)")


class TorchCodecUnavailableError(DecoderUnavailableError):
    """torchcodec, or the FFmpeg libraries it loads, is not installed."""


def video_decoder_class() -> type:
    """torchcodec's ``VideoDecoder``, or an error that says how to install it (its native part
    fails to load with an ``OSError`` or ``RuntimeError`` without FFmpeg's libraries)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        raise TorchCodecUnavailableError(f"{INSTALL} ({error})") from None
    except (OSError, RuntimeError) as error:
        raise TorchCodecUnavailableError(
            f"{INSTALL}; loading it failed: {_first_line(error)}") from None
    return VideoDecoder


@DECODERS.register("torchcodec")
class TorchCodecReader:
    """torchcodec ``VideoDecoder``: seeks to and decodes only the requested frames."""

    @staticmethod
    def check_available() -> None:
        """Before any video is read: torchcodec and FFmpeg's libraries load, or one
        :class:`TorchCodecUnavailableError` says what to install (else every video would be
        listed as broken)."""
        video_decoder_class()
        try:
            from torchcodec._internally_replaced_utils import load_core_libraries
        except ImportError:  # another torchcodec: its first decoder says what is missing
            return
        try:
            load_core_libraries()
        except (OSError, RuntimeError) as error:
            raise TorchCodecUnavailableError(
                f"{INSTALL}; FFmpeg's libraries could not be loaded ({_first_line(error)})") \
                from None

    def __init__(self, path: str | Path, num_threads: int = 1, device: str = "cpu") -> None:
        decoder_class = video_decoder_class()
        self.path = Path(path)
        if self.path.stat().st_size == 0:
            raise VideoDecodeError(f"{self.path}: empty file")
        try:
            self._decoder = decoder_class(str(self.path), dimension_order="NHWC",
                                          num_ffmpeg_threads=max(1, num_threads), device=device)
        except Exception as error:  # torchcodec raises RuntimeError and ValueError
            if "no video stream" in str(error).lower() or "best video stream" in str(error).lower():
                raise VideoDecodeError(f"{self.path}: no video stream (audio only?)") from None
            raise VideoDecodeError(f"{self.path}: cannot open: {_first_line(error)}") from None
        metadata = self._decoder.metadata
        self._length = int(metadata.num_frames or 0)
        if self._length == 0:
            raise VideoDecodeError(f"{self.path}: no video frames")
        self.fps = float(metadata.average_fps or 25.0)
        self.device = str(device)
        self.cpu_fallback = False  # set when NVDEC could not decode the file
        self._fallback_reported = False
        self._batch_error_reported = False

    def __len__(self) -> int:
        return self._length

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        indices = np.clip(np.asarray(indices, dtype=np.int64), 0, self._length - 1)
        try:
            frames = self._decoder.get_frames_at(indices.tolist()).data
        except Exception as error:  # a frame the file promises but cannot give: one by one
            self._report_batch_error(error)
            return frames_one_by_one(self.path, lambda i: self._decoder[i].cpu().numpy(), indices)
        self._report_cpu_fallback()
        return frames.cpu().numpy()

    def _report_batch_error(self, error: Exception) -> None:
        """Log, once per reader, why a batch read failed before the frames are read one by one
        (which then says which frames failed, if any)."""
        if not self._batch_error_reported:
            self._batch_error_reported = True
            log.debug("%s: torchcodec could not read the frames together (%s); reading them one "
                      "by one", self.path, _first_line(error))

    def _report_cpu_fallback(self) -> None:
        """On the GPU, warn once per file when NVDEC could not decode it and torchcodec fell
        back to the CPU (which it does silently)."""
        if self.device == "cpu" or self._fallback_reported:
            return
        status = getattr(self._decoder, "cpu_fallback", None)
        if status is not None and getattr(status, "status_known", True):
            self._fallback_reported = True
            if status:
                self.cpu_fallback = True
                log.warning("%s: torchcodec decoded on the CPU, not with NVDEC (%s)", self.path,
                            status)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
