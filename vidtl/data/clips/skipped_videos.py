"""The list of videos a run could not read: appended as they fail, from every worker process."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vidtl.core.atomic import FULL_DISK, DiskFullError, write_text_atomic

log = logging.getLogger(__name__)

# The reason of a video that was read with some frames replaced (data.on_decode_error=replace),
# not skipped.
REPLACED = "frames replaced"


class SkippedVideoLog:
    """Append-only list of videos that could not be read, shared by all worker processes.

    Each failure is appended (one ``path<TAB>reason`` line, written at once) to ``path``, so
    nothing is lost if the run dies. :meth:`read` returns them de-duplicated.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None

    def add(self, video: Path, reason: str) -> None:
        if reason.startswith(REPLACED):
            log.warning("video %s: %s", video, reason)
        else:
            log.warning("skipping unreadable video %s: %s", video, reason)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{video}\t{' '.join(reason.split())}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        except OSError as error:
            if error.errno in FULL_DISK:
                raise DiskFullError(f"{self.path}: cannot be written "
                                    f"({os.strerror(error.errno)})") from None
            raise
        finally:
            os.close(fd)

    def read(self) -> dict[str, str]:
        """``{video path: first reason}`` of every video logged so far."""
        if self.path is None or not self.path.exists():
            return {}
        skipped: dict[str, str] = {}
        for line in self.path.read_text().splitlines():
            video, _, reason = line.partition("\t")
            skipped.setdefault(video, reason)
        return skipped

    def compact(self, rewrite: bool = True) -> int:
        """Rewrite the log sorted and without duplicates (``rewrite``: one process of a run
        does); return the number of videos skipped (those read with replaced frames are
        counted by :meth:`replaced`)."""
        skipped = self.read()
        if rewrite and self.path is not None and skipped:
            write_text_atomic(self.path,
                              "".join(f"{v}\t{r}\n" for v, r in sorted(skipped.items())))
        return len(skipped) - self.replaced()

    def replaced(self) -> int:
        """The number of videos read with some frames replaced (``on_decode_error=replace``)."""
        return sum(1 for reason in self.read().values() if reason.startswith(REPLACED))
