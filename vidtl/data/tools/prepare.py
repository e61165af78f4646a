"""Offline, resumable, parallel preparation of a dataset (``vidtl-prepare``).

``mode='frames'`` writes a frame store (see :mod:`vidtl.data.frames.frame_store`) that
``data.source=frames data.frames_root=OUTPUT`` reads. ``mode='reencode'`` writes every video again
as H.264 with a small short side and a short keyframe interval, under the same relative path, and
copies the annotation files beside them, so ``data.root=OUTPUT`` is the same dataset, faster.

Each output file appears atomically when complete, so a second run (after an interruption)
skips the videos already done. A video that fails is listed in ``prepare_failures.txt`` and in
the summary, never fatal. The settings are kept in ``vidtl_prepare.json``; preparing into a
folder made with other settings is refused.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidtl.core.atomic import DiskFullError, atomic_path, process_alive, write_text_atomic
from vidtl.core.errors import UserError
from vidtl.core.safe_files import MAX_ANNOTATION_BYTES, inside, read_bytes
from vidtl.data.clips.skipped_videos import PARTIAL, SkippedVideoLog
from vidtl.data.frames.frame_store import frame_file_path, relative_video_path, write_frame_file
from vidtl.data.frames.prepared_folder import (
    PrepareSettings,
    write_manifest,
)
from vidtl.data.tools.parallel import map_videos
from vidtl.data.tools.reencode import reencode_video

log = logging.getLogger(__name__)

FAILURES = "prepare_failures.txt"
SUMMARY = "prepare_summary.json"
ANNOTATION_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".lst"}


@dataclass
class PrepareSummary:
    """What a preparation run did."""

    output: str
    prepared: int = 0
    already_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    bytes_written: int = 0
    partial: dict[str, str] = field(default_factory=dict)  # prepared, but only in part

    def __str__(self) -> str:
        lines = [f"prepared {self.prepared} videos into {self.output} "
                 f"({self.bytes_written / 2**20:.1f} MiB), {self.already_done} already done, "
                 f"{len(self.failed)} failed, {len(self.partial)} decoded only in part"]
        lines += [f"  failed: {video}: {reason}" for video, reason in sorted(self.failed.items())]
        lines += [f"  in part: {video}: {reason}"
                  for video, reason in sorted(self.partial.items())]
        return "\n".join(lines)


def output_path(settings: PrepareSettings, output: Path, data_root: Path, video: Path) -> Path:
    """Where the prepared form of ``video`` goes."""
    if settings.mode == "frames":
        return frame_file_path(output, data_root, video)
    return output / relative_video_path(video, data_root)


def prepare_one(settings: PrepareSettings, job: tuple[Path, Path]) -> tuple[int, str | None]:
    """Prepare one ``(video, destination)`` (in a worker process); return the bytes written,
    and ``"decoded 21 of 40 frames"`` for a video that decoded only in part (a cut file)."""
    video, destination = job
    if settings.mode == "frames":
        info = write_frame_file(video, destination, settings.short_side, settings.quality,
                                settings.fps)
        decoded, promised = info.decoded_frames or info.source_frames, info.source_frames
    else:
        decoded, promised = reencode_video(video, destination, settings.short_side,
                                           settings.keyframe_interval, settings.crf)
    partly = f"decoded {decoded} of {promised} frames" if decoded < promised else None
    return destination.stat().st_size, partly


def copy_annotations(data_root: Path, output: Path) -> int:
    """Copy the annotation files (text, csv, json) under ``data_root`` to ``output``: regular
    files that lie inside the root (a link is copied only when it resolves inside it; linked
    folders are not entered), never over anything already at the target."""
    copied, real_root = 0, os.path.realpath(data_root)
    for directory, _, names in os.walk(data_root):  # does not follow links to folders
        for name in names:
            path = Path(directory) / name
            if path.suffix.lower() not in ANNOTATION_SUFFIXES:
                continue
            if not inside(os.path.realpath(path), real_root) or not path.is_file():
                log.warning("not copied: %s (a link out of the dataset root, or not a regular "
                            "file)", path)
                continue
            target = output / path.relative_to(data_root)
            if not os.path.lexists(target):
                with atomic_path(target) as partial:
                    partial.write_bytes(read_bytes(path, MAX_ANNOTATION_BYTES, "annotation file"))
                copied += 1
    return copied


def remove_stale_partials(output: Path) -> int:
    """Delete the half-written files of processes that died (an interrupted run)."""
    removed = 0
    for directory, _, names in os.walk(output):  # does not follow links to folders
        for name in names:
            match = re.fullmatch(r"\..*\.(\d+)\.partial.*", name)
            path = Path(directory) / name
            if match and path.is_file() and not process_alive(int(match.group(1))):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def prepare_dataset(
    videos: list[Path],
    data_root: Path,
    output: Path,
    settings: PrepareSettings,
    workers: int = 1,
    progress: bool = True,
) -> PrepareSummary:
    """Prepare every video of ``videos`` (files under ``data_root``) into ``output``."""
    write_manifest(output, settings, data_root)
    if removed := remove_stale_partials(output):
        log.info("removed %d half-written files of an interrupted run", removed)
    if settings.mode == "reencode":
        copy_annotations(data_root, output)
    failures = SkippedVideoLog(output / FAILURES)
    summary = PrepareSummary(output=str(output))
    todo, sources = [], {}
    for video in dict.fromkeys(Path(os.path.abspath(v)) for v in videos):  # each once
        destination = output_path(settings, output, data_root, video)
        if sources.setdefault(destination, video) != video:
            raise UserError(f"{sources[destination]} and {video} would share the prepared file "
                            f"{destination}; rename one of them")
        if destination.is_file():
            summary.already_done += 1
        else:
            todo.append((video, destination))
    jobs = map_videos(functools.partial(prepare_one, settings), todo, workers,
                      f"vidtl-prepare {settings.mode}", progress)
    for (video, _), result in jobs:
        if isinstance(result, DiskFullError):  # every video after it would fail the same way
            raise DiskFullError(
                f"vidtl-prepare stopped: {result} (the {summary.prepared + summary.already_done}"
                f" videos done so far are kept and skipped when it runs again)")
        if isinstance(result, Exception):
            reason = f"{type(result).__name__}: {result}"
            summary.failed[str(video)] = reason
            failures.add(video, reason)
        else:
            size, partly = result
            summary.prepared += 1
            summary.bytes_written += size
            if partly is not None:  # kept, as the video readers keep it (on_decode_error)
                summary.partial[str(video)] = partly
                failures.add(video, partly, PARTIAL)
    write_text_atomic(output / SUMMARY, json.dumps(asdict(summary), indent=2) + "\n")
    return summary

