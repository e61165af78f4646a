"""Re-encoding a video for cheap random access: smaller frames, a short keyframe interval."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from vidtl.core.atomic import atomic_path
from vidtl.data.frames.frame_store import resized_shape
from vidtl.data.frames.reader import VideoDecodeError, decode_errors_named

# Containers that hold H.264 under their own name; any other suffix (.webm, .mpg, .wmv...) gets
# Matroska, which holds it, under the same file name (decoders read the content, not the name).
H264_CONTAINERS = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".flv", ".ts"}


def reencode_video(
    video: Path,
    destination: Path,
    short_side: int | None = 256,
    keyframe_interval: int = 16,
    crf: int = 20,
    preset: str = "veryfast",
) -> tuple[int, int]:
    """Write ``video`` as H.264 with the short side at most ``short_side`` and a keyframe every
    ``keyframe_interval`` frames (so seeking decodes at most that many frames); return the
    number of frames written and the number its header promised (more for a cut file, whose
    copy then holds only the frames that decoded). The container follows ``destination``'s
    suffix; the file appears atomically (written under a temporary name, then renamed)."""
    import av

    if video.stat().st_size == 0:
        raise VideoDecodeError(f"{video}: empty file")
    written = 0
    with decode_errors_named(video, "re-encode"), \
            atomic_path(destination, keep_suffix=True) as partial:
        container = None if destination.suffix.lower() in H264_CONTAINERS else "matroska"
        with av.open(str(video)) as source, \
                av.open(str(partial), "w", format=container) as target:
            if not source.streams.video:
                raise VideoDecodeError(f"{video}: no video stream")
            stream = source.streams.video[0]
            stream.thread_type = "AUTO"
            promised = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            height, width = resized_shape(stream.height, stream.width, short_side)
            height, width = height + height % 2, width + width % 2  # yuv420p needs even sides
            encoder = target.add_stream("libx264", rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.options = {
                "crf": str(crf),
                "preset": preset,
                "x264-params": f"keyint={keyframe_interval}:min-keyint={keyframe_interval}:"
                               "scenecut=0",
            }
            for frame in source.decode(stream):
                image = frame.reformat(width=width, height=height, format="yuv420p",
                                       interpolation="AREA")
                image.pts, image.time_base = written, 1 / Fraction(rate)
                for packet in encoder.encode(image):
                    target.mux(packet)
                written += 1
            for packet in encoder.encode():
                target.mux(packet)
        if written == 0:
            raise VideoDecodeError(f"{video}: no decodable frame")
    return written, max(promised, written)
