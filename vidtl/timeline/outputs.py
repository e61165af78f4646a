"""The timeline's files: ``timeline.csv`` (a row per window) and ``segments.csv``.

Rows are written and flushed as windows are scored and segments close, so a run that is
stopped (end of stream, Ctrl-C, SIGTERM) or killed keeps every row it had. The files replace
only a timeline vidtl wrote before (their header says so).
"""

from __future__ import annotations

import csv
import fcntl
import os
from pathlib import Path

from vidtl.core.errors import UserError
from vidtl.core.own_files import check_replaceable, starts_with
from vidtl.timeline.scoring_loop import WindowScore
from vidtl.timeline.segments import Segment

TIMELINE_COLUMNS = ("video", "start_s", "end_s", "top_class", "top_probability")
SEGMENT_COLUMNS = ("video", "start_s", "end_s", "label", "mean_probability")
TIMELINE_FILE = "timeline.csv"
SEGMENTS_FILE = "segments.csv"


class FolderInUseError(UserError):
    """Another run is writing the timeline of this folder."""


def _header(columns: tuple[str, ...]) -> bytes:
    return (",".join(columns)).encode()


class CsvRows:
    """A CSV file at ``path`` with ``header``, written row by row and flushed."""

    def __init__(self, path: Path, header: list[str], what: str) -> None:
        check_replaceable(path, starts_with(_header(tuple(header[:5]))), what)
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(path, flags, 0o644)
        try:  # one run writes a folder's timeline at a time
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise FolderInUseError(f"{path} is being written by another vidtl-predict "
                                   f"mode=timeline; give this run another output_dir") from None
        os.ftruncate(descriptor, 0)
        # a file name that is not UTF-8 is written with its odd bytes escaped (\xff)
        self.file = open(descriptor, "w", newline="", encoding="utf-8",
                         errors="backslashreplace")
        self.writer = csv.writer(self.file)
        self.write(header)

    def write(self, row: list[object]) -> None:
        # a file name's bytes that are not UTF-8 (surrogates in Python) written as \xff
        self.writer.writerow([cell.encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace") if isinstance(cell, str) else cell for cell in row])
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TimelineFiles:
    """``timeline.csv`` and ``segments.csv`` in ``folder`` for a model of ``class_names``."""

    def __init__(self, folder: str | Path, class_names: list[str]) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.class_names = class_names
        self.timeline = CsvRows(self.folder / TIMELINE_FILE,
                                [*TIMELINE_COLUMNS, *class_names], "a vidtl timeline.csv")
        self.segments = CsvRows(self.folder / SEGMENTS_FILE, list(SEGMENT_COLUMNS),
                                "a vidtl segments.csv")

    def window(self, score: WindowScore) -> None:
        probabilities = score.probabilities.tolist()
        top = max(range(len(probabilities)), key=probabilities.__getitem__)
        self.timeline.write([score.video, f"{score.start_s:.3f}", f"{score.end_s:.3f}",
                             self.class_names[top], f"{probabilities[top]:.6f}",
                             *(f"{p:.6f}" for p in probabilities)])

    def segment(self, video: str, segment: Segment) -> None:
        self.segments.write([video, f"{segment.start_s:.3f}", f"{segment.end_s:.3f}",
                             self.class_names[segment.label], f"{segment.mean_probability:.6f}"])

    def close(self) -> None:
        self.timeline.close()
        self.segments.close()
