"""Reading a dataset's annotations into a :class:`VideoIndex`: which videos, which labels, which
subsets; missing files and excluded videos dropped and reported."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidtl.core.quoting import WITHHELD, content_withheld, printable, quote, quoting
from vidtl.core.safe_files import inside
from vidtl.data.annotations import (  # noqa: F401
    charades,
    csv_list,
    folder,
    hmdb51,
    kinetics,
    ssv2,
    ucf101,
)
from vidtl.data.annotations.carved_validation import CarvedValidation, carve_validation
from vidtl.data.annotations.exclusions import drop_excluded, read_exclusion_list
from vidtl.data.annotations.formats import (
    FORMATS,
    MAX_CLASSES,
    DatasetLayoutError,
    FormatFn,
    format_layout,
)
from vidtl.data.annotations.records import VideoIndex
from vidtl.data.annotations.validation_lists import add_validation_lists

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lies and how to read it.

    ``format`` is a registered name (``ucf101``, ``hmdb51``, ``kinetics400``, ``ssv2``,
    ``charades``, ``folder``, ``csv``) or a format function; ``options`` go to the format (keys it
    does not take are ignored when ``None``). ``strict`` makes a missing annotated video an error
    instead of a skipped one; ``exclude_list`` names videos to leave out (``vidtl-check`` writes
    one). ``generate``, when set, makes the dataset at ``root`` first (the synthetic default). An
    annotated video must lie under ``root`` (or a folder an option names, such as SSv2's
    ``video_dir``) unless ``allow_outside_root``. ``quote_content`` false (a dataset a checkpoint
    named) keeps the annotation files' text out of every message (:mod:`vidtl.core.quoting`).
    ``extra_val_lists`` are further validation sets
    (:mod:`vidtl.data.annotations.validation_lists`). ``val_from_train`` carves the validation set
    from the training videos (:mod:`vidtl.data.annotations.carved_validation`).
    """

    root: Path
    format: str | FormatFn = "ucf101"
    options: dict[str, Any] = field(default_factory=dict)
    strict: bool = False
    exclude_list: Path | None = None
    generate: Callable[[Path], Any] | None = None
    allow_outside_root: bool = False
    quote_content: bool = True
    extra_val_lists: tuple[Path, ...] = ()
    val_from_train: CarvedValidation | None = None

    @property
    def name(self) -> str:
        return self.format if isinstance(self.format, str) else getattr(
            self.format, "__name__", "custom")


def read_index(spec: DatasetSpec) -> VideoIndex:
    """The index of ``spec``'s dataset (generated first when ``spec.generate`` is set), with
    the videos of ``spec.exclude_list`` left out."""
    if spec.generate is not None:
        spec.generate(spec.root)
    with content_withheld(not spec.quote_content):
        index = load_index(spec.format, spec.root, spec.strict, spec.allow_outside_root,
                           extra_val_lists=spec.extra_val_lists, **spec.options)
    if spec.exclude_list is not None:
        excluded = read_exclusion_list(spec.exclude_list, spec.root)
        before = sum(len(v) for v in index.subsets.values())
        for subset, records in index.subsets.items():
            index.subsets[subset] = drop_excluded(records, excluded)
        after = sum(len(v) for v in index.subsets.values())
        log.info("left out %d videos named in %s", before - after, spec.exclude_list)
    if spec.val_from_train is not None:
        carve_validation(index, spec.val_from_train)
    sizes = {k: len(v) for k, v in index.subsets.items()}
    log.info("%s at %s: %d classes, %s videos", spec.name, spec.root, index.num_classes, sizes)
    return index


def options_of_other_formats() -> set[str]:
    """The option names that some registered format takes."""
    return {name for format_name in FORMATS
            for name in inspect.signature(FORMATS.get(format_name)).parameters}


def load_index(format: str | FormatFn, root: str | Path, strict: bool = False,
               allow_outside_root: bool = False, extra_val_lists: Sequence[str | Path] = (),
               **options: Any) -> VideoIndex:
    """Read dataset ``root`` in ``format`` (and ``extra_val_lists``: further validation sets);
    refuse entries outside it (unless ``allow_outside_root``); drop (or, if ``strict``,
    refuse) missing files.

    ``options`` that the format does not take and that are ``None`` are ignored, so one data
    config can carry the keys of every format.
    """
    fn = FORMATS.get(format) if isinstance(format, str) else format
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset root {root} does not exist or is not a folder; "
                                 f"expected {format_layout(format)}")
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = {k: v for k, v in options.items() if takes_any or k in params}
    ignored = [k for k, v in options.items() if k not in accepted and v is not None]
    unknown = [k for k in ignored if k not in options_of_other_formats()]
    if unknown:  # an option of another format (split, after data.format=csv) is no typo
        log.warning("format %s ignores the options %s (no dataset format takes them)", format,
                    unknown)
    if len(unknown) < len(ignored):
        log.debug("format %s ignores the options of other formats %s", format,
                  [k for k in ignored if k not in unknown])
    index = fn(root, **accepted)
    if not 0 < index.num_classes <= MAX_CLASSES:
        raise DatasetLayoutError(f"dataset {format} under {root} has {index.num_classes} "
                                 f"classes; expected 1 to {MAX_CLASSES}")
    unprintable = [name for name in index.class_names if not str(name).isprintable()]
    if unprintable:  # a checkpoint must name its classes in printable text (docs/safety.md)
        raise DatasetLayoutError(f"dataset {format} under {root}: class name "
                                 f"{quote(str(unprintable[0]))} holds control characters "
                                 f"({len(unprintable)} such names); expected printable names")
    add_validation_lists(index, root, extra_val_lists)
    if not allow_outside_root:
        _refuse_outside(index, [root, *_named_folders(root, accepted)])
    _drop_missing(index, root, strict)
    if not index.subsets.get("train") and not index.subsets.get("val"):
        raise DatasetLayoutError(f"no videos found for dataset {format} under {root}")
    return index


def _named_folders(root: Path, options: dict[str, Any]) -> list[Path]:
    """The folders the format's options name (SSv2's ``video_dir``...): the user chose them."""
    folders = []
    for value in options.values():
        if isinstance(value, (str, Path)) and value:
            folder = Path(value).expanduser()
            folder = folder if folder.is_absolute() else root / folder
            if folder.is_dir():
                folders.append(folder)
    return folders


def _refuse_outside(index: VideoIndex, roots: list[Path]) -> None:
    """A :class:`DatasetLayoutError` when an annotated video lies outside ``roots`` (an
    absolute path, or ``..`` climbing out): a list may not reach the rest of the disk."""
    outside = [r.path for records in index.subsets.values() for r in records
               if not any(inside(r.path, root) for root in roots)]
    if outside:
        raise DatasetLayoutError(
            f"{len(outside)} annotated videos lie outside data.root {roots[0]} (the first: "
            f"{quote(str(outside[0]))}); set data.allow_outside_root=true if the dataset keeps "
            f"its videos elsewhere on purpose")


def _drop_missing(index: VideoIndex, root: Path, strict: bool) -> None:
    missing = []
    for name, records in index.subsets.items():
        present = []
        for record in records:
            (present if record.path.is_file() else missing).append(record)
        index.subsets[name] = present
    index.missing = sorted({r.path for r in missing})
    if not index.missing:
        return
    if quoting():
        shown = "\n  ".join(printable(p) for p in index.missing[:10])
        more = f"\n  ... and {len(index.missing) - 10} more" if len(index.missing) > 10 else ""
        listed = f":\n  {shown}{more}"
    else:
        listed = f" {WITHHELD}"
    message = f"{len(index.missing)} annotated videos are missing under {root}{listed}"
    if strict:
        raise DatasetLayoutError(message + "\n(data.strict=true; set it to false to skip them)")
    log.warning("%s\nThey are skipped (data.strict=true makes this an error).", message)
