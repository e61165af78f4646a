"""Nothing vidtl writes replaces a file it did not create.

A command that writes to a path the user names (``vidtl-check``'s report and exclusion list,
``vidtl-export``'s model, ``vidtl-extract``'s embeddings, ``vidtl-prepare``'s copies) writes a
new file there, or replaces one that is recognisably its own earlier output of that kind
(:func:`check_replaceable`). Anything else at that path (a video, the user's own file, a link,
a FIFO) stops the command with one line before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from vidtl.core.safe_files import MiB, open_regular, read_bytes

Recognizer = Callable[[Path], bool]


class WouldReplaceError(FileExistsError):
    """A path vidtl was asked to write holds something it did not write."""


def check_replaceable(path: str | Path, is_ours: Recognizer, what: str) -> None:
    """Return when ``path`` is free or holds ``what`` (with its article: "an exclusion list")
    that ``is_ours`` recognises as vidtl's; raise :class:`WouldReplaceError` otherwise."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    try:
        ours = path.is_file() and not path.is_symlink() and is_ours(path)
    except (OSError, ValueError, RecursionError):
        ours = False
    if not ours:
        raise WouldReplaceError(
            f"{path} exists and is not {what} that vidtl wrote; vidtl replaces only its own "
            f"files: remove it or choose another path")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of regular file ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open_regular(path) as file:
        while chunk := file.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def starts_with(prefix: bytes) -> Recognizer:
    """A recognizer: the file begins with ``prefix``."""
    def recognize(path: Path) -> bool:
        with open_regular(path) as file:
            return file.read(len(prefix)) == prefix
    return recognize


def json_with_keys(keys: Iterable[str]) -> Recognizer:
    """A recognizer: the file is a JSON object (of at most 64 MiB) holding ``keys``."""
    wanted = set(keys)

    def recognize(path: Path) -> bool:
        data = json.loads(read_bytes(path, 64 * MiB))
        return isinstance(data, dict) and wanted <= set(data)
    return recognize
