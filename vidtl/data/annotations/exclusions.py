"""Exclusion lists: videos a run leaves out (written by ``vidtl-check``, read by the datamodule).

One video path per line, absolute or relative to the dataset root; blank lines and lines
starting with ``#`` are ignored. A tab and anything after it on a line (the reason) is ignored.
"""

from __future__ import annotations

from pathlib import Path

from vidtl.core.atomic import write_text_atomic
from vidtl.core.own_files import check_replaceable, starts_with
from vidtl.core.safe_files import read_lines
from vidtl.data.annotations.records import VideoRecord

FIRST_LINE = "# vidtl-check exclusion list"


def write_exclusion_list(path: Path, bad: dict[str, str], header: str = "") -> None:
    """Write ``{video path: reason}`` as an exclusion list (atomically), over nothing but an
    earlier exclusion list (:mod:`vidtl.core.own_files`)."""
    check_replaceable(path, is_exclusion_list, "an exclusion list")
    lines = [FIRST_LINE, *(f"# {line}" for line in header.splitlines())]
    lines += [f"{video}\t{' '.join(reason.split())}" for video, reason in sorted(bad.items())]
    write_text_atomic(path, "\n".join(lines) + "\n")


is_exclusion_list = starts_with(b"# vidtl-check")  # (0.3 wrote "# vidtl-check: broken...")


def read_exclusion_list(path: Path, data_root: Path) -> set[Path]:
    """The resolved paths an exclusion list names."""
    if not path.exists():
        raise FileNotFoundError(f"exclusion list {path} does not exist")
    excluded = set()
    for line in read_lines(path, "exclusion list"):
        entry = line.split("\t", 1)[0].strip()
        if entry and not entry.startswith("#"):
            video = Path(entry).expanduser()
            excluded.add((video if video.is_absolute() else data_root / video).resolve())
    return excluded


def drop_excluded(records: list[VideoRecord], excluded: set[Path]) -> list[VideoRecord]:
    """``records`` without those whose file is in ``excluded``."""
    return [record for record in records if record.path.resolve() not in excluded]
