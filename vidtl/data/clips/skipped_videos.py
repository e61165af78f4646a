"""The list of videos a run could not read: appended as they fail, from every worker process.

One line per record: ``path<TAB>kind<TAB>reason``, the kind ``skipped`` (the video was not
read), ``replaced`` (read with some frames replaced, ``data.on_decode_error=replace``) or
``partial`` (``vidtl-prepare`` kept the frames it could decode). Files of vidtl 0.4 have no
kind (``path<TAB>reason``; a reason starting ``frames replaced`` was a replaced video) and are
read as such, so a run resumed onto one of them counts its videos rightly.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal, NamedTuple

from vidtl.core.atomic import FULL_DISK, DiskFullError, write_text_atomic
from vidtl.core.safe_files import read_bytes

log = logging.getLogger(__name__)
MAX_LIST_BYTES = 256 << 20  # a resumed run reads the list its folder holds: bounded

Kind = Literal["skipped", "replaced", "partial"]
SKIPPED: Kind = "skipped"
REPLACED: Kind = "replaced"
PARTIAL: Kind = "partial"
KINDS: tuple[Kind, ...] = (SKIPPED, REPLACED, PARTIAL)
# What a reason began with, in a 0.4 file, for a video read with some frames replaced.
REPLACED_PREFIX_0_4 = "frames replaced"
WARNINGS = {SKIPPED: "skipping unreadable video %s: %s",
            REPLACED: "video %s: frames replaced: %s",
            PARTIAL: "video %s: prepared in part: %s"}


class Entry(NamedTuple):
    """One video of the list: what happened to it and why."""

    kind: Kind
    reason: str


def parse_line(line: str) -> tuple[str, Entry]:
    """``(video, entry)`` of one line, of this version or of 0.4 (no kind)."""
    parts = line.rsplit("\t", 2)  # a kind and a reason hold no tab; a path may
    if len(parts) == 3 and parts[1] in KINDS:
        return parts[0], Entry(parts[1], parts[2])  # type: ignore[arg-type]
    video, _, reason = line.partition("\t")
    return video, Entry(REPLACED if reason.startswith(REPLACED_PREFIX_0_4) else SKIPPED, reason)


# Characters that would end a line (str.splitlines) or a field, written escaped in a path.
_ESCAPES = {ord(c): f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
            for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _line(video: str | Path, entry: Entry) -> str:
    """One line: the path with line breaks escaped, the kind, the reason on one line without
    tabs (so a line read back is read the same, whatever an earlier file held)."""
    return f"{str(video).translate(_ESCAPES)}\t{entry.kind}\t{' '.join(entry.reason.split())}\n"


class SkippedVideoLog:
    """Append-only list of videos that could not be read, shared by all worker processes.

    Each failure is appended (one line, written at once) to ``path``, so nothing is lost if
    the run dies. :meth:`entries` returns them de-duplicated.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None

    def add(self, video: Path, reason: str, kind: Kind = SKIPPED) -> None:
        """List ``video`` as ``kind`` (a warning says so) for ``reason``."""
        log.warning(WARNINGS[kind], video, reason)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = _line(video, Entry(kind, reason))
        # O_NOFOLLOW: a link left in the run folder does not take the line elsewhere
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line.encode(errors="surrogateescape"))  # any file name
        except OSError as error:
            if error.errno in FULL_DISK:
                raise DiskFullError(f"{self.path}: cannot be written "
                                    f"({os.strerror(error.errno)})") from None
            raise
        finally:
            os.close(fd)

    def entries(self) -> dict[str, Entry]:
        """``{video path: first entry}`` of every video listed so far."""
        if self.path is None or not self.path.exists():
            return {}
        listed: dict[str, Entry] = {}
        data = read_bytes(self.path, MAX_LIST_BYTES, "skipped-videos list")  # an earlier run's
        for line in data.decode(errors="surrogateescape").splitlines():
            video, entry = parse_line(line)
            listed.setdefault(video, entry)
        return listed

    def read(self) -> dict[str, str]:
        """``{video path: first reason}`` of every video listed so far."""
        return {video: entry.reason for video, entry in self.entries().items()}

    def compact(self, rewrite: bool = True) -> int:
        """Rewrite the list sorted, without duplicates and in this version's form (``rewrite``:
        one process of a run does); return the number of videos skipped (those read with
        replaced frames are counted by :meth:`replaced`)."""
        listed = self.entries()
        if rewrite and self.path is not None and listed:
            write_text_atomic(self.path, "".join(_line(v, e) for v, e in sorted(listed.items())))
        return self._count(SKIPPED, listed)

    def replaced(self) -> int:
        """The number of videos read with some frames replaced (``on_decode_error=replace``)."""
        return self._count(REPLACED, self.entries())

    @staticmethod
    def _count(kind: Kind, listed: dict[str, Entry]) -> int:
        return sum(1 for entry in listed.values() if entry.kind == kind)
