"""Sources of frames read in one sequential pass: a video file, a stream URL, a pipe, a
capture device, or frames the caller already has.

Every source yields its frames in order as :class:`DecodedFrame` objects whose RGB pixels are
made only when asked for (a window that samples 8 frames of 100 converts 8). Files and live
sources are read with PyAV; nothing is seeked.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vidtl.core.errors import UserError
from vidtl.data.frames.reader import VideoDecodeError
from vidtl.timeline.window_plan import FALLBACK_FPS

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
PIPE = "-"
DEVICE_PREFIX = "/dev/video"


class SourceError(UserError):
    """A source that cannot be opened or read."""


class StreamStalledError(SourceError):
    """A live source that gave no frame for ``timeline.stall_timeout_s``."""


class DecodedFrame(Protocol):
    def rgb(self) -> np.ndarray:
        """uint8 ``(H, W, 3)`` RGB pixels."""
        ...


@dataclass(frozen=True)
class SourceInfo:
    """What is known of a source once it is open: its display ``name``, the ``stem`` its
    picture is named after, whether it is ``live`` (frames arrive at their own pace and
    windows may be dropped), its frame rate and, for files, its frame count."""

    name: str
    stem: str
    live: bool
    fps: float
    frame_count: int | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.frame_count is None else self.frame_count / self.fps


def source_kind(source: str) -> str:
    """``url``, ``pipe``, ``device`` or ``file``."""
    if source == PIPE:
        return "pipe"
    scheme, separator, _ = source.partition("://")
    if separator:
        if scheme.lower() not in STREAM_SCHEMES:
            raise SourceError(f"input {display_name(source)!r}: the scheme {scheme[:20]!r} is "
                              f"not a stream vidtl reads (one of {', '.join(STREAM_SCHEMES)})")
        return "url"
    if source.startswith(DEVICE_PREFIX):
        return "device"
    return "file"


def is_live(source: str) -> bool:
    """Whether ``source`` is a live source (a URL, a pipe, a device)."""
    return source_kind(source) != "file"


def display_name(source: str) -> str:
    """``source`` as logs, CSV rows and pictures show it: a URL without the user name and
    password it may carry (``rtsp://user:secret@camera/...``) and without its query
    (``?token=...``, where cameras and HLS servers put credentials too)."""
    if source == PIPE:
        return "stdin"
    scheme, separator, rest = source.partition("://")
    if not separator:
        return source
    host, slash, path = rest.partition("/")
    if not slash:
        host, path = host.partition("?")[0], ""
    query = "?..." if "?" in rest else ""
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path.partition('?')[0]}{query}"


def source_stem(source: str) -> str:
    """A file-name-safe stem for ``source``'s picture."""
    kind = source_kind(source)
    raw = ({"pipe": "stdin", "file": Path(source).stem}.get(kind)
           or display_name(source).split("://")[-1])
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in raw).strip("._")
    return stem[:100] or "stream"


class _PyAVFrame:
    __slots__ = ("frame",)

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def rgb(self) -> np.ndarray:
        return self.frame.to_ndarray(format="rgb24")


class _ArrayFrame:
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def rgb(self) -> np.ndarray:
        return self.array


class PyAVFrameStream:
    """The frames of ``source`` (see :func:`source_kind`) decoded in order by PyAV with
    ``threads`` decoding threads (0: FFmpeg's choice). A network source that refuses the
    connection is tried again until ``open_timeout_s`` has passed (a server starting, a camera
    rebooting); a read that waits longer than ``read_timeout_s`` ends it with
    :class:`StreamStalledError`. ``live`` (``None``: a URL, a pipe or a device is live, a file
    is not) says whether windows may be dropped when the model falls behind."""

    def __init__(self, source: str, threads: int = 0, open_timeout_s: float = 10.0,
                 read_timeout_s: float = 10.0, live: bool | None = None) -> None:
        self.source = source
        self.kind = source_kind(source)
        self.live = self.kind != "file" if live is None else live
        self.threads = threads
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.info: SourceInfo | None = None
        self.stopped_early = ""  # why a pass ended before the end of the file
        self._container: Any = None

    def open(self) -> SourceInfo:
        import av

        if self.kind == "file":
            path = Path(self.source).expanduser()
            if not path.is_file():
                what = "not a regular file" if path.exists() else "no such video file"
                raise SourceError(f"input {self.source}: {what}")
            if path.stat().st_size == 0:
                raise VideoDecodeError(f"{self.source}: empty file")
        deadline = time.monotonic() + self.open_timeout_s
        while True:
            try:
                self._container = self._open(av)
                break
            except Exception as error:  # noqa: BLE001 - reported as one line
                if self.kind != "url" or time.monotonic() > deadline:
                    raise SourceError(f"input {display_name(self.source)}: cannot open: "
                                      f"{self._said(error)}") from None
                time.sleep(0.2)
        if not self._container.streams.video:
            self.close()
            raise SourceError(f"input {display_name(self.source)}: no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = self.threads
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and 0 < float(rate) <= 1000 else None
        count = int(stream.frames or 0) if self.kind == "file" else 0
        self.info = SourceInfo(display_name(self.source), source_stem(self.source), self.live,
                               fps or FALLBACK_FPS, count or None)
        return self.info

    def _open(self, av: Any) -> Any:
        timeouts = (self.open_timeout_s, self.read_timeout_s)
        # a live source: probe one second of it, not five (FFmpeg's default), before frames
        quick = {"analyzeduration": "1000000"}
        if self.kind == "pipe":
            # unbuffered (no lock): a read blocked on a stalled pipe cannot hold up the exit
            return av.open(open(os.dup(sys.stdin.fileno()), "rb", buffering=0), mode="r",
                           options=quick)
        if self.kind == "device":
            return av.open(self.source, format="v4l2", options=quick, timeout=timeouts)
        if self.kind == "url":
            options = {**quick, **({"rtsp_transport": "tcp"}
                                   if self.source.startswith("rtsp") else {})}
            return av.open(self.source, options=options, timeout=timeouts)
        # "file:": a name such as "pipe:0.mp4" or "subfile,,...:x" is a file, not a protocol
        return av.open("file:" + str(Path(self.source).expanduser().absolute()))

    def frames(self) -> Iterator[DecodedFrame]:
        if self._container is None:
            self.open()
        stream = self._container.streams.video[0]
        decoded = 0
        try:
            for frame in self._container.decode(stream):
                decoded += 1
                yield _PyAVFrame(frame)
        except Exception as error:  # noqa: BLE001 - a broken tail ends the pass
            if decoded == 0:
                raise VideoDecodeError(f"{display_name(self.source)}: cannot decode: "
                                       f"{self._said(error)}") from None
            said = f"{type(error).__name__} {error}".lower()
            if any(word in said for word in ("timed out", "timeout", "exiterror")):
                raise StreamStalledError(f"input {display_name(self.source)}: no frame for "
                                         f"{self.read_timeout_s:g} s (timeline.stall_timeout_s="
                                         f"{self.read_timeout_s:g}); stopping") from None
            self.stopped_early = f"{type(error).__name__}: {self._said(error)}"

    @property
    def name(self) -> str:
        return display_name(self.source)

    def _said(self, error: BaseException) -> str:
        """What FFmpeg said, on one line, without the URL's credentials."""
        text = " ".join(str(error).split()).replace(self.source, display_name(self.source))
        return text[:300]

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass
            self._container = None


class ArrayFrameStream:
    """Frames the caller already has: uint8 ``(H, W, 3)`` arrays at ``fps``."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float, name: str = "frames") -> None:
        self._frames = frames
        self.name = name
        self.info = SourceInfo(name, source_stem(name), live=False, fps=float(fps))

    def open(self) -> SourceInfo:
        return self.info

    def frames(self) -> Iterator[DecodedFrame]:
        for index, frame in enumerate(self._frames):
            array = np.asarray(frame)
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
                raise SourceError(f"frame {index}: expected uint8 RGB (H, W, 3), got "
                                  f"{array.dtype} {array.shape}")
            yield _ArrayFrame(array)

    def close(self) -> None:
        pass


class FrameStream(Protocol):
    info: SourceInfo | None

    def open(self) -> SourceInfo: ...

    def frames(self) -> Iterator[DecodedFrame]: ...

    def close(self) -> None: ...
