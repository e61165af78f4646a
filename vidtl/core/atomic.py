"""Files that appear complete or not at all: written under a temporary name, then renamed.

Every file vidtl writes that a crash must not leave half-written (checkpoints, metrics,
reports, exported models, frame stores, re-encoded videos, embeddings) goes through
:func:`atomic_path` or :func:`write_text_atomic`. A run killed mid-write leaves the previous
file intact and at most a hidden ``.<name>.<pid>.partial`` file beside it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidtl.core.errors import UserError

FULL_DISK = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class DiskFullError(UserError):
    """A file could not be written for lack of space (or a file-size limit); the previous
    version of it is intact."""


def partial_path(destination: Path, keep_suffix: bool = False) -> Path:
    """The temporary name of ``destination`` for this process: ``.<name>.<pid>.partial``, or
    ``.<stem>.<pid>.partial<suffix>`` with ``keep_suffix`` (for writers that choose the format
    by the file's suffix)."""
    if keep_suffix:
        return destination.with_name(f".{destination.stem}.{os.getpid()}.partial"
                                     f"{destination.suffix}")
    return destination.with_name(f".{destination.name}.{os.getpid()}.partial")


@contextmanager
def atomic_path(destination: str | Path, keep_suffix: bool = False,
                fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``destination`` to write to; when the block succeeds it
    is renamed to ``destination`` (after an ``fsync`` when asked), else it is removed and the
    error propagates; a full disk (or file-size limit) becomes a :class:`DiskFullError` that
    names ``destination``."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination, keep_suffix)
    try:
        yield partial
        if fsync:
            with open(partial, "rb") as file:
                os.fsync(file.fileno())
        partial.replace(destination)
    except OSError as error:
        if error.errno not in FULL_DISK:
            raise
        raise _disk_full(destination, os.strerror(error.errno)) from None
    except RuntimeError as error:  # torch.save reports a failed write as a RuntimeError
        if "file write failed" not in str(error) and "unexpected pos" not in str(error):
            raise
        raise _disk_full(destination, " ".join(str(error).split())[:120]) from None
    finally:
        partial.unlink(missing_ok=True)


def _disk_full(destination: Path, why: str) -> DiskFullError:
    kept = "its previous version is intact" if destination.exists() else "nothing was written"
    return DiskFullError(f"{destination}: cannot be written ({why}); {kept}; free some space "
                         f"and run the command again")


def write_text_atomic(destination: str | Path, text: str) -> Path:
    """Write ``text`` to ``destination`` atomically; return the path."""
    destination = Path(destination)
    with atomic_path(destination) as partial:
        partial.write_text(text, errors="surrogateescape")  # any file name
    return destination


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (the writer of a ``.partial`` file, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
