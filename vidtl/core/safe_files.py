"""Reading files that vidtl did not write: regular files only, never more than a limit.

A dataset, a shared frame store, a shard store, a feature cache or a checkpoint can bring any
file. Everything vidtl reads from them goes through this module:

- a FIFO, a device or a socket (which can block ``open`` for good, or stream without end) is
  refused before it is opened: the file is opened without blocking and checked to be a regular
  file (after following symbolic links) before a byte is read;
- a file larger than the limit for its kind is refused before it is read, and a read never
  takes more than that limit, whatever the file grows to meanwhile;
- text is read line by line, each line bounded;
- an entry of a list resolves inside its root (:func:`inside`), unless the user allows more.

Errors name the file, its kind and what was expected, never its content.
"""

from __future__ import annotations

import fcntl
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vidtl.core.errors import UserError

MiB = 2**20
# Annotation files (lists, JSON): the largest public ones (Kinetics-700, SSv2) are under 64 MiB.
MAX_ANNOTATION_BYTES = 256 * MiB
# Any one line of a list: a path and a label, with room to spare.
MAX_LINE_CHARS = 65_536


class RefusedFileError(UserError):
    """A file that vidtl will not read: not a regular file, or larger than its limit."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | Path, what: str = "file") -> int:
    """The size of ``path``, a regular file (symbolic links followed); a FIFO, device, socket
    or folder is a :class:`RefusedFileError`, a missing file a ``FileNotFoundError``."""
    mode = os.stat(path)
    if not stat.S_ISREG(mode.st_mode):
        raise RefusedFileError(f"{what} {path} is {_kind(mode.st_mode)}, not a regular file; "
                               f"vidtl reads regular files only")
    return mode.st_size


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading, once it is known to be a regular file: the open
    itself cannot block (``O_NONBLOCK``), and the check is made on the opened file."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFileError(f"{what} {path} is {_kind(mode)}, not a regular file; "
                                   f"vidtl reads regular files only")
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _too_large(path: str | Path, what: str, limit: int) -> RefusedFileError:
    return RefusedFileError(f"{what} {path} is larger than {_size(limit)}, the most vidtl reads "
                            f"of such a file")


def _size(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of regular file ``path``; a :class:`RefusedFileError` past ``limit`` bytes."""
    with open_regular(path, what) as file:
        if os.fstat(file.fileno()).st_size > limit:
            raise _too_large(path, what, limit)
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew while it was read
        raise _too_large(path, what, limit)
    return data


def read_text(path: str | Path, limit: int = MAX_ANNOTATION_BYTES, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a byte-order mark dropped), at most ``limit`` bytes."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RefusedFileError(f"{what} {path} is not UTF-8 text (byte {error.start})") from None


def read_lines(path: str | Path, what: str = "file", max_line: int = MAX_LINE_CHARS,
               limit: int = MAX_ANNOTATION_BYTES) -> list[str]:
    """The lines of text file ``path`` (without line ends; a byte-order mark dropped). A line
    longer than ``max_line`` characters, or a file larger than ``limit`` bytes, is a
    :class:`RefusedFileError` naming the file and the line, raised before the rest is read."""
    lines = []
    for number, line in enumerate(_bounded_lines(path, what, max_line, limit), 1):
        lines.append(line[1:] if number == 1 and line.startswith("\ufeff") else line)
    return lines


def _bounded_lines(path: str | Path, what: str, max_line: int, limit: int) -> Iterator[str]:
    with open_regular(path, what) as binary:
        if os.fstat(binary.fileno()).st_size > limit:
            raise _too_large(path, what, limit)
        text = io.TextIOWrapper(binary, encoding="utf-8", newline=None)
        number, total = 0, 0
        try:
            while line := text.readline(max_line + 1):
                number += 1
                total += len(line)
                if len(line.rstrip("\r\n")) > max_line:
                    raise RefusedFileError(f"{what} {path}:{number}: a line longer than "
                                           f"{max_line} characters; expected one entry a line")
                if total > limit:
                    raise _too_large(path, what, limit)
                yield line.rstrip("\r\n")
        except UnicodeDecodeError:
            raise RefusedFileError(f"{what} {path}:{number + 1}: not UTF-8 text") from None


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies under ``root``, as written (``..`` resolved, links not followed: a
    dataset may link its videos in from elsewhere) or once both are resolved (a root reached
    through a link, a list written with the real paths)."""
    def under(child: str, parent: str) -> bool:
        return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)

    written = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return under(*written) or under(os.path.realpath(path), os.path.realpath(root))
