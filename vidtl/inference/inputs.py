"""What ``input=`` names: one video, a folder of videos, or a list file of video paths."""

from __future__ import annotations

from pathlib import Path

from vidtl.core.errors import UserError
from vidtl.core.safe_files import read_lines
from vidtl.data.annotations.formats import VIDEO_EXTENSIONS

LIST_SUFFIXES = (".txt", ".lst", ".list")


class InputError(UserError):
    """``input=`` names nothing that holds videos."""


def expand_input(path: str | Path) -> list[Path]:
    """The videos of ``path``: the file itself, every video file under a folder (sorted,
    recursively), or the paths listed in a ``.txt``/``.lst``/``.list`` file, one per line
    (blank lines and ``#`` comments skipped; relative paths are relative to the list's folder).
    Listed files are not checked here: a missing one is reported with the predictions."""
    path = Path(path).expanduser()
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*")
                        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise InputError(f"input {path}: a folder without video files "
                             f"({', '.join(VIDEO_EXTENSIONS)})")
        return videos
    if path.suffix.lower() in LIST_SUFFIXES:
        if not path.exists():
            raise InputError(f"input {path}: list file does not exist")
        videos = []
        for line in read_lines(path, "input list"):
            line = line.strip()
            if line and not line.startswith("#"):
                listed = Path(line).expanduser()
                videos.append(listed if listed.is_absolute() else path.parent / listed)
        if not videos:
            raise InputError(f"input {path}: the list names no video (one path per line)")
        return videos
    if not path.exists():
        raise InputError(f"input {path} does not exist (expected a video file, a folder of "
                         f"videos or a list file {'/'.join(LIST_SUFFIXES)})")
    return [path]
