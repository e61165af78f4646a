"""CSV lists of ``path,label[,start_sec,end_sec]``, one per subset; a label cell may hold
several labels, ``label1;label2`` (a multi-label record)."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import read_lines
from vidtl.data.annotations.formats import MAX_CLASSES, DatasetLayoutError, register_format
from vidtl.data.annotations.records import (
    TimedLabel,
    VideoIndex,
    VideoRecord,
    validation_set_name,
)

CSV_LAYOUT = (
    "CSV rows 'path,label[,start_sec,end_sec]' (header optional, paths relative to data.root; "
    "several labels of one video as \"label1;label2\")"
)
LABEL_SEPARATOR = ";"


def label_parts(cell: str) -> list[str]:
    """The labels of a label cell, in order: ``"jump; wave"`` is ``["jump", "wave"]``."""
    return [part.strip() for part in cell.split(LABEL_SEPARATOR)]


def _window(path: Path, number: int, start: str, end: str) -> tuple[float, float]:
    """The ``start_sec,end_sec`` of row ``number``: seconds, finite, 0 <= start <= end."""
    try:
        first, last = float(start), float(end)
    except ValueError:
        first = last = math.nan
    if not (math.isfinite(first) and math.isfinite(last) and 0 <= first <= last):
        raise DatasetLayoutError(
            f"{path}:{number}: start and end must be seconds, 0 <= start <= end, "
            f"got {quote(start + ', ' + end)}"
        )
    return first, last


def read_csv_list(path: Path) -> list[tuple[int, str, str, float | None, float | None]]:
    """``(line, path, label cell, start_sec, end_sec)`` of every row of list ``path``, checked
    (the label cell as written: :func:`label_parts` splits it)."""
    rows = []
    for number, row in enumerate(csv.reader(read_lines(path)), 1):
        if not row or not "".join(row).strip():
            continue
        cells = [c.strip() for c in row]
        if number == 1 and cells[0].lower() == "path":
            continue
        if len(cells) not in (2, 4) or not cells[0] or not cells[1]:
            raise DatasetLayoutError(
                f"{path}:{number}: expected {CSV_LAYOUT}, got {quote(','.join(row))}"
            )
        if not all(label_parts(cells[1])):
            raise DatasetLayoutError(
                f"{path}:{number}: expected labels 'label1;label2' without empty ones, "
                f"got {quote(cells[1])}"
            )
        start = end = None
        if len(cells) == 4:
            start, end = _window(path, number, cells[2], cells[3])
        rows.append((number, cells[0], cells[1], start, end))
    return rows


def list_path(root: Path, path: str | Path) -> Path:
    """A list file named in the config: as given when absolute or found, else under ``root``."""
    path = Path(str(path)).expanduser()
    return path if path.is_absolute() or path.exists() else root / path


def _validation_lists(val_list: Any) -> list[str | Path]:
    """``data.val_list``: one list, or several (a list of lists: several validation sets)."""
    if isinstance(val_list, (str, Path)):
        return [val_list]
    if isinstance(val_list, Sequence) and val_list and all(
            isinstance(item, (str, Path)) and str(item) for item in val_list):
        return list(val_list)
    raise DatasetLayoutError(f"data.val_list must be a CSV list or a list of them "
                             f"([a.csv, b.csv]: several validation sets), got {val_list!r}")


def _label_key(label: str, integer: bool) -> str:
    """The class name that ``label`` stands for (``"007"`` is class ``"7"`` among integers)."""
    if integer and re.fullmatch(r"[0-9]+", label):
        try:
            return str(int(label))
        except ValueError:  # more digits than Python converts: no class anyway
            return label
    return label


def labelled_records(path: Path, rows: list[tuple[int, str, str, float | None, float | None]],
                     root: Path, class_names: list[str], unknown: str) -> list[VideoRecord]:
    """The records of ``rows`` (of list ``path``) whose labels are ``class_names`` (or their
    integers, when the names are ``0...N-1``); a label outside them is an error saying it
    ``unknown``. A cell of several labels (``jump;wave``) makes a multi-label record: its
    ``label`` the first, its ``actions`` each distinct label over the whole video."""
    by_name = {name: i for i, name in enumerate(class_names)}
    integer = all(name == str(i) for i, name in enumerate(class_names))
    records = []
    for number, video, cell, start, end in rows:
        labels: list[int] = []
        for label in label_parts(cell):
            key = _label_key(label, integer)
            if key not in by_name:
                raise DatasetLayoutError(f"{path}:{number}: label {quote(label)} {unknown}")
            labels.append(by_name[key])
        distinct = list(dict.fromkeys(labels))
        actions = tuple(TimedLabel(label) for label in distinct) if len(distinct) > 1 else ()
        records.append(VideoRecord(list_path(root, video) if Path(video).is_absolute()
                                   else root / video, distinct[0], start, end, actions=actions))
    return records


def _class_names(train_path: Path, labels: list[str]) -> tuple[list[str], bool]:
    """The class names that the training list's ``labels`` make, and whether they are
    integers (``0...largest``); else the sorted names."""
    if not all(re.fullmatch(r"[0-9]+", label) for label in labels):
        return sorted(set(labels)), False
    try:
        largest = max(int(label) for label in labels)
    except ValueError:  # more digits than Python converts
        raise DatasetLayoutError(f"{train_path}: an integer label has thousands of digits; "
                                 f"labels are 0...classes-1") from None
    if largest >= MAX_CLASSES:
        raise DatasetLayoutError(f"{train_path}: integer label {largest} asks for more than "
                                 f"{MAX_CLASSES} classes; labels are 0...classes-1")
    return [str(i) for i in range(largest + 1)], True


@register_format("csv", layout=CSV_LAYOUT)
def csv_list(
    root: Path,
    train_list: str | Path | None = None,
    val_list: str | Path | Sequence[str | Path] | None = None,
    test_list: str | Path | None = None,
) -> VideoIndex:
    """CSV lists of ``path,label``; labels are class names or integers (all of one kind), a
    cell ``"jump;wave"`` several of them (a multi-label record; the class names are then every
    single label of the training list).
    ``val_list`` may name several lists: each is a validation set named after its file
    (``val/<stem>/top1``), the first is ``val`` too (the one checkpoints watch)."""
    for subset, given in (("train", train_list), ("val", val_list)):
        if given is None or given == "???":  # ??? : a config's mandatory value, not given
            raise DatasetLayoutError(
                f"data.{subset}_list is required for the csv format ({CSV_LAYOUT})"
            )
    validation = _validation_lists(val_list)
    lists: dict[str, str | Path | None] = {"train": train_list, "val": validation[0],
                                           "test": test_list}
    names: list[str] = []
    if len(validation) > 1:
        taken: set[str] = set()
        names = [validation_set_name(path, taken) for path in validation]
        lists |= {f"val/{name}": path for name, path in zip(names[1:], validation[1:])}
    parsed = {
        s: (list_path(root, p), read_csv_list(list_path(root, p)))
        for s, p in lists.items() if p is not None
    }
    train_path, train_rows = parsed["train"]
    if not train_rows:
        raise DatasetLayoutError(f"{train_path} lists no videos; expected {CSV_LAYOUT}")
    class_names, integer = _class_names(
        train_path, [label for row in train_rows for label in label_parts(row[2])])
    known = (f"never occurs in the training list {train_path} ("
             + (f"integer labels 0...{len(class_names) - 1}" if integer
                else f"{len(class_names)} class names") + ")")
    subsets = {subset: labelled_records(path, rows, root, class_names, known)
               for subset, (path, rows) in parsed.items()}
    return VideoIndex(class_names, subsets, val_name=names[0] if names else None,
                      extra_val=names[1:])
