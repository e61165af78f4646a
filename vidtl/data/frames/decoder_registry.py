"""The registry of decoder backends: ``data.backend`` names one.

A backend is a callable ``(path, num_threads) -> VideoReader`` (usually the reader class).
Register your own with ``@DECODERS.register("name")`` in a module that your config imports, or
give ``data.backend`` a config with ``_target_`` (and ``_partial_: true``) naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from vidtl.core.registry import Registry
from vidtl.data.frames.reader import VideoReader

ReaderFactory = Callable[..., VideoReader]  # (path: Path, num_threads: int) -> VideoReader

DECODERS: Registry[ReaderFactory] = Registry("decoder backend", "data.backend")
