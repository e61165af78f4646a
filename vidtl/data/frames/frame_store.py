"""The frame store: one file per video holding its frames as JPEG, with an offset index.

Decoding compressed video is the bottleneck of video training; JPEG frames decode an order of
magnitude faster and random access costs nothing. ``vidtl-prepare mode=frames`` writes a store
(:func:`write_frame_file` per video); :class:`FrameStoreReader` reads one file with the same
interface as the video decoders.

File layout (``<video path relative to the data root>.frames``)::

    b"VIDTLFS1" | JPEG 0 | JPEG 1 | ... | JSON metadata | uint64 LE length of the JSON | b"VIDTLFS1"

The metadata holds the byte offsets of the frames and the source video's frame count and rate.
Frame indices are always those of the source video: a store written at a reduced frame rate
(every ``frame_step``-th frame) answers index ``i`` with the stored frame nearest to it, so
samplers, time windows and annotations mean the same with either source.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from vidtl.core.atomic import atomic_path
from vidtl.core.quoting import quote
from vidtl.core.safe_files import RefusedFileError, open_regular
from vidtl.data.frames.reader import PartialDecodeError, VideoDecodeError, decode_errors_named

MAGIC = b"VIDTLFS1"
SUFFIX = ".frames"
FORMAT_VERSION = 2  # 2: decoded_frames (a cut file's frames past the decodable ones)
READABLE_VERSIONS = (1, 2)
_TRAILER = struct.Struct("<Q8s")  # metadata length, magic
# What a frame file's metadata may say (a store is shared: its files are read as hostile).
MAX_METADATA_BYTES = 64 * 2**20
MAX_STORED_FRAMES = 10_000_000
MAX_FRAME_PIXELS = 4096 * 4096
INFO_LIMITS = {"source_frames": (1, 10**8), "fps": (1e-3, 1e4), "frame_step": (1, 10**6),
               "width": (1, 16_384), "height": (1, 16_384), "quality": (1, 100),
               "version": (min(READABLE_VERSIONS), FORMAT_VERSION)}


@dataclass(frozen=True)
class FrameFileInfo:
    """The metadata of one frame file."""

    source_frames: int  # frame count of the source video (as its header states, like decord)
    fps: float  # frame rate of the source video
    frame_step: int  # every frame_step-th source frame is stored
    width: int
    height: int
    quality: int
    offsets: list[int]  # start of each stored JPEG, plus the end of the last one
    version: int = FORMAT_VERSION
    # Source frames that decoded (fewer than source_frames for a cut file; None: version 1,
    # which did not record it).
    decoded_frames: int | None = None

    @property
    def stored_frames(self) -> int:
        return len(self.offsets) - 1


INFO_FIELDS = {f.name for f in dataclass_fields(FrameFileInfo)}


def frame_file_path(store_root: Path, data_root: Path, video: Path) -> Path:
    """Where the frames of ``video`` (a file under ``data_root``) live in the store."""
    return store_root / (str(relative_video_path(video, data_root)) + SUFFIX)


def relative_video_path(video: Path, data_root: Path) -> Path:
    """``video`` relative to ``data_root`` (symbolic links are not followed, so two links to one
    file are two videos); a video outside it (``data.allow_outside_root``) goes under
    ``_external/<digest of its absolute path>/``, which no path inside the root is (the
    preparation refuses two videos that would share a file all the same)."""
    video, data_root = Path(os.path.abspath(video)), Path(os.path.abspath(data_root))
    try:
        return video.relative_to(data_root)
    except ValueError:
        digest = hashlib.sha256(str(video).encode()).hexdigest()[:20]
        return Path("_external", digest, video.name)


def resized_shape(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """``(height, width)`` scaled so the short side is ``short_side`` (never enlarged)."""
    if not short_side or min(height, width) <= short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def write_frame_file(
    video: Path,
    destination: Path,
    short_side: int | None = 256,
    quality: int = 90,
    fps: float | None = None,
) -> FrameFileInfo:
    """Decode ``video`` once and write its frames (resized, JPEG) to ``destination``.

    ``fps`` keeps only enough frames for that rate (``None``: all). The file appears atomically:
    it is written under a temporary name and renamed when complete, so an interrupted
    preparation never leaves a half-written store entry behind.
    """
    import av
    from torchvision.io import encode_jpeg

    if video.stat().st_size == 0:
        raise VideoDecodeError(f"{video}: empty file")
    offsets: list[int] = []
    with decode_errors_named(video, "decode"), \
            atomic_path(destination, keep_suffix=True) as partial:
        with av.open(str(video)) as container, open(partial, "wb") as out:
            if not container.streams.video:
                raise VideoDecodeError(f"{video}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            source_fps = float(rate) if rate else 25.0
            frame_step = max(1, round(source_fps / fps)) if fps else 1
            height, width = resized_shape(stream.height, stream.width, short_side)
            out.write(MAGIC)
            decoded = 0
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index % frame_step:
                    continue
                rgb = frame.to_ndarray(width=width, height=height, format="rgb24",
                                       interpolation="AREA")
                jpeg = encode_jpeg(torch.from_numpy(rgb).permute(2, 0, 1), quality=quality)
                offsets.append(out.tell())
                out.write(jpeg.numpy().tobytes())
            if decoded == 0:
                raise VideoDecodeError(f"{video}: no decodable frame")
            offsets.append(out.tell())
            info = FrameFileInfo(
                source_frames=max(int(stream.frames or 0), decoded),
                decoded_frames=decoded,
                fps=source_fps,
                frame_step=frame_step,
                width=width,
                height=height,
                quality=quality,
                offsets=offsets,
            )
            metadata = json.dumps(asdict(info)).encode()
            out.write(metadata)
            out.write(_TRAILER.pack(len(metadata), MAGIC))
    return info


def read_frame_file_info(path: Path) -> FrameFileInfo:
    """The metadata of a frame file (raises :class:`VideoDecodeError` if it is not one)."""
    with _open_frame_file(path) as file:
        return _read_info(file, path)


def _open_frame_file(path: Path) -> BinaryIO:
    """``path`` opened as a file vidtl did not write: a regular file, never a FIFO or device
    (which could block the loader for good); a :class:`VideoDecodeError` otherwise."""
    try:
        return open_regular(path, "frame file")
    except FileNotFoundError:
        raise VideoDecodeError(
            f"{path}: not in the frame store; run vidtl-prepare mode=frames for this dataset"
        ) from None
    except (RefusedFileError, OSError) as error:
        raise VideoDecodeError(f"{path}: {error}") from None


def _read_info(file: BinaryIO, path: Path) -> FrameFileInfo:
    size = file.seek(0, os.SEEK_END)
    if size < len(MAGIC) + _TRAILER.size:
        raise VideoDecodeError(f"{path}: not a vidtl frame file (too short)")
    file.seek(size - _TRAILER.size)
    length, magic = _TRAILER.unpack(file.read(_TRAILER.size))
    end = size - _TRAILER.size - length  # where the metadata starts: the frames end there
    if magic != MAGIC or not 0 < length <= MAX_METADATA_BYTES or end < len(MAGIC):
        raise VideoDecodeError(f"{path}: not a complete vidtl frame file")
    file.seek(end)
    try:
        fields = json.loads(file.read(length))
    except (ValueError, RecursionError):
        raise VideoDecodeError(f"{path}: its metadata is not JSON") from None
    if not isinstance(fields, dict) or fields.get("version") not in READABLE_VERSIONS:
        version = fields.get("version") if isinstance(fields, dict) else None
        raise VideoDecodeError(f"{path}: frame store version {quote(version)}, this vidtl "
                               f"reads version {FORMAT_VERSION}; prepare the store again")
    return checked_info(fields, end, path)


def checked_info(fields: dict, end: int, path: Path) -> FrameFileInfo:
    """The metadata ``fields`` of a frame file whose frames end at byte ``end``, each field of
    its type and within its bounds (a :class:`VideoDecodeError` naming the field otherwise):
    a crafted file asks for no more memory than a real one."""
    if set(fields) - {"decoded_frames"} != INFO_FIELDS - {"decoded_frames"}:
        raise VideoDecodeError(f"{path}: its metadata must have the fields {sorted(INFO_FIELDS)}")
    for name, (low, high) in INFO_LIMITS.items():
        value = fields[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high or (name != "fps" and not isinstance(value, int)):
            raise VideoDecodeError(f"{path}: metadata {name} must be a number from {low} to "
                                   f"{high}")
    decoded = fields.get("decoded_frames")
    if decoded is not None and (isinstance(decoded, bool) or not isinstance(decoded, int)
                                or not 1 <= decoded <= fields["source_frames"]):
        raise VideoDecodeError(f"{path}: metadata decoded_frames must be a frame count up to "
                               f"source_frames")
    if fields["width"] * fields["height"] > MAX_FRAME_PIXELS:
        raise VideoDecodeError(f"{path}: metadata frames of {fields['width']}x{fields['height']} "
                               f"are larger than a frame store holds ({MAX_FRAME_PIXELS} pixels)")
    offsets = fields["offsets"]
    if not isinstance(offsets, list) or not 2 <= len(offsets) <= MAX_STORED_FRAMES + 1 \
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets) \
            or offsets[0] < len(MAGIC) or offsets[-1] > end \
            or any(b <= a for a, b in zip(offsets, offsets[1:])):
        raise VideoDecodeError(f"{path}: metadata offsets must rise within the file")
    return FrameFileInfo(**fields)


class FrameStoreReader:
    """Reads frames of one video from its frame file: the :class:`VideoReader` interface.

    Lengths and indices are those of the source video; only the frames asked for are decoded,
    with simplejpeg (libjpeg-turbo, straight into one array, without holding the GIL). The file
    is opened once and closed with the reader.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self._data: bytes | None = None
        self._file = _open_frame_file(self.path)  # held open until close()
        try:
            self.info = _read_info(self._file, self.path)
        except BaseException:
            self.close()
            raise
        self.fps = self.info.fps

    @classmethod
    def from_bytes(cls, data: bytes, name: str | Path) -> FrameStoreReader:
        """A reader of a frame file held in memory (a shard's member); ``name`` is for errors."""
        reader = cls.__new__(cls)
        reader.path, reader._file, reader._data = Path(name), None, data
        reader.info = _read_info(io.BytesIO(data), reader.path)
        reader.fps = reader.info.fps
        return reader

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        self.close()

    def __len__(self) -> int:
        return self.info.source_frames

    def stored_index(self, indices: np.ndarray) -> np.ndarray:
        """The stored frame nearest to each source frame index."""
        stored = np.rint(np.asarray(indices, dtype=np.float64) / self.info.frame_step)
        return np.clip(stored.astype(np.int64), 0, self.info.stored_frames - 1)

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        import simplejpeg  # libjpeg-turbo; decodes into our buffer, without the GIL

        indices = np.asarray(indices, dtype=np.int64)
        unique, inverse = np.unique(self.stored_index(indices), return_inverse=True)
        frames = np.empty((len(unique), self.info.height, self.info.width, 3), np.uint8)
        for frame, jpeg in zip(frames, self.jpeg_bytes(unique)):
            try:
                decoded = simplejpeg.decode_jpeg(jpeg, colorspace="RGB", buffer=frame)
            except ValueError as error:
                raise VideoDecodeError(f"{self.path}: corrupt frame: {error}") from None
            if decoded.shape != frame.shape:
                raise VideoDecodeError(f"{self.path}: a frame of {decoded.shape[:2]}, the store "
                                       f"says {frame.shape[:2]}")
        inverse = inverse.reshape(-1)
        if not np.array_equal(inverse, np.arange(len(unique))):  # (distinct, in order: no copy)
            frames = frames[inverse]
        return self.reported(indices, frames)

    def reported(self, indices: np.ndarray, clip: Any) -> Any:
        """``clip`` (the frames of ``indices``), or a :class:`PartialDecodeError` carrying it
        when some indices lie past the frames the source decoded (a cut file): they hold the
        last decoded frame, exactly as the video readers replace them."""
        decoded = self.info.decoded_frames
        if decoded is None or decoded >= self.info.source_frames:
            return clip
        missing = int(np.count_nonzero(np.asarray(indices) >= decoded))
        if missing:
            raise PartialDecodeError(self.path, len(indices) - missing, len(indices), clip)
        return clip

    def jpeg_bytes(self, stored: np.ndarray) -> list[bytes]:
        """The JPEG files of the stored frames ``stored``."""
        offsets = self.info.offsets
        if self._data is not None:
            return [self._data[offsets[i]:offsets[i + 1]] for i in np.asarray(stored).tolist()]
        if self._file is None:
            raise ValueError(f"{self.path}: reader is closed")
        descriptor = self._file.fileno()
        return [os.pread(descriptor, offsets[i + 1] - offsets[i], offsets[i])
                for i in np.asarray(stored).tolist()]

    def encoded_frames(self, stored: np.ndarray) -> list[torch.Tensor]:
        """The JPEG bytes of the stored frames ``stored`` (uint8 tensors, for decoding on the
        device)."""
        return [torch.frombuffer(bytearray(jpeg), dtype=torch.uint8)
                for jpeg in self.jpeg_bytes(stored)]
