"""Writing one prepared file atomically: under a temporary name, renamed when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidtl.data.decoding import VideoDecodeError


@contextmanager
def partial_file(destination: Path, video: Path, action: str) -> Iterator[Path]:
    """Yield a temporary path beside ``destination`` (same suffix, named with this process id)
    and rename it to ``destination`` when the block succeeds. On failure the temporary file is
    removed and the error is raised as a :class:`VideoDecodeError` naming ``video``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.stem}.{os.getpid()}.partial"
                                    f"{destination.suffix}")
    try:
        yield partial
        partial.replace(destination)
    except VideoDecodeError:
        partial.unlink(missing_ok=True)
        raise
    except Exception as error:  # PyAV's errors: a broken or truncated file
        partial.unlink(missing_ok=True)
        raise VideoDecodeError(f"{video}: cannot {action}: {error}") from None
