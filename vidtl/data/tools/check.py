"""Scanning a dataset for broken videos (``vidtl-check``).

Each video is opened with decord (the decoder training uses): a missing or zero-byte file, a
file that cannot be opened, has no frames, or whose first or last frame (by the header's count)
cannot be decoded is reported with the reason, and so is a file whose container header (read by
PyAV) promises more frames than decord finds (a truncated AVI, for example). ``deep=True`` also
decodes every frame with PyAV and reports fewer decodable frames than the header says.
"""

from __future__ import annotations

import functools
from pathlib import Path


def check_video(video: Path, deep: bool = False) -> str | None:
    """Why ``video`` is broken, or ``None`` if it reads."""
    import decord

    if not video.is_file():
        return "missing file"
    if video.stat().st_size == 0:
        return "zero-byte file"
    try:
        reader = decord.VideoReader(str(video), num_threads=1)
    except Exception as error:
        return f"undecodable: cannot open: {' '.join(str(error).split())[:200]}"
    length = len(reader)
    if length == 0:
        return "undecodable: no video frames"
    for index in (0, length - 1):
        try:
            reader[index].asnumpy()
        except Exception:
            if index == 0:
                return "undecodable: the first frame cannot be decoded"
            return f"truncated: the header says {length} frames, the last cannot be decoded"
    del reader
    promised = max(length, header_frame_count(video))
    if promised > length:
        return f"truncated: the header says {promised} frames, {length} are in the file"
    if deep:
        decoded = count_decodable_frames(video)
        if decoded < promised:
            return f"truncated: the header says {promised} frames, {decoded} decode"
    return None


def header_frame_count(video: Path) -> int:
    """The frame count in the container header (0 when it has none or cannot be read)."""
    import av

    try:
        with av.open(str(video)) as container:
            return int(container.streams.video[0].frames or 0)
    except Exception:
        return 0


def count_decodable_frames(video: Path) -> int:
    """How many frames PyAV decodes before the end or the first error."""
    import av

    count = 0
    try:
        with av.open(str(video)) as container:
            for _ in container.decode(container.streams.video[0]):
                count += 1
    except Exception:
        pass
    return count


def check_videos(videos: list[Path], deep: bool = False, workers: int = 1,
                 progress: bool = True) -> dict[str, str]:
    """``{path: reason}`` of the broken videos among ``videos``."""
    from vidtl.data.tools.parallel import map_videos

    bad: dict[str, str] = {}
    for video, result in map_videos(functools.partial(check_video, deep=deep),
                                    dict.fromkeys(videos), workers, "vidtl-check", progress):
        if isinstance(result, Exception):
            bad[str(video)] = f"check failed: {type(result).__name__}: {result}"
        elif result is not None:
            bad[str(video)] = result
    return dict(sorted(bad.items()))
