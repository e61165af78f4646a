"""The registry of dataset formats: ``data.format`` names one.

A format is a function ``(root, **options) -> VideoIndex`` that reads a dataset's annotations
(not the videos). Register one with ``@register_format("name", layout="...")``, or give
``data.format`` a config with ``_target_`` and ``_partial_: true`` naming the function: no
change to vidtl is needed (see ``experiments/jsonl_format``). Every layout error names the file
(and line) and the layout that was expected.
"""

from __future__ import annotations

from collections.abc import Callable

from vidtl.core.errors import UserError
from vidtl.core.registry import Registry
from vidtl.data.annotations.records import VideoIndex

VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
)

FormatFn = Callable[..., VideoIndex]
MAX_CLASSES = 100_000  # the most classes a dataset may have (Kinetics-700 has 700)
FORMATS: Registry[FormatFn] = Registry("dataset format", "data.format")
LAYOUTS: dict[str, str] = {}  # format name -> the layout it expects, for error messages


class DatasetLayoutError(UserError):
    """A dataset's files or annotations do not have the expected layout."""


def register_format(name: str, layout: str | None = None) -> Callable[[FormatFn], FormatFn]:
    """Register ``fn(root, **options) -> VideoIndex`` as dataset format ``name``; ``layout``
    describes the files it expects (shown when the root is missing)."""
    if layout is not None:
        LAYOUTS[name] = layout
    return FORMATS.register(name)


def format_layout(format: str | FormatFn) -> str:
    """What ``format`` expects, in words."""
    if isinstance(format, str):
        return LAYOUTS.get(format, f"the {format} layout")
    return f"the layout that {getattr(format, '__name__', format)} reads"
