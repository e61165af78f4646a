"""CSV lists of ``path,label[,start_sec,end_sec]``, one per subset."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import read_lines
from vidtl.data.annotations.formats import MAX_CLASSES, DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

CSV_LAYOUT = (
    "CSV rows 'path,label[,start_sec,end_sec]' (header optional, paths relative to data.root)"
)


def read_csv_list(path: Path) -> list[tuple[int, str, str, float | None, float | None]]:
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
        start = end = None
        if len(cells) == 4:
            try:
                start, end = float(cells[2]), float(cells[3])
            except ValueError:
                raise DatasetLayoutError(
                    f"{path}:{number}: start and end must be seconds, "
                    f"got {quote(cells[2] + ', ' + cells[3])}"
                ) from None
        rows.append((number, cells[0], cells[1], start, end))
    return rows


@register_format("csv", layout=CSV_LAYOUT)
def csv_list(
    root: Path,
    train_list: str | Path | None = None,
    val_list: str | Path | None = None,
    test_list: str | Path | None = None,
) -> VideoIndex:
    """CSV lists of ``path,label``; labels are class names or integers (all of one kind)."""
    lists = {"train": train_list, "val": val_list, "test": test_list}
    for subset in ("train", "val"):
        if lists[subset] is None:
            raise DatasetLayoutError(
                f"data.{subset}_list is required for the csv format ({CSV_LAYOUT})"
            )

    def resolve(p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() or p.exists() else root / p

    parsed = {
        s: (resolve(p), read_csv_list(resolve(p))) for s, p in lists.items() if p is not None
    }
    train_path, train_rows = parsed["train"]
    if not train_rows:
        raise DatasetLayoutError(f"{train_path} lists no videos; expected {CSV_LAYOUT}")
    integer = all(re.fullmatch(r"\d+", label) for _, _, label, _, _ in train_rows)
    if integer:
        largest = max(int(r[2]) for r in train_rows)
        if largest >= MAX_CLASSES:
            raise DatasetLayoutError(f"{train_path}: integer label {largest} asks for more than "
                                     f"{MAX_CLASSES} classes; labels are 0...classes-1")
        class_names = [str(i) for i in range(largest + 1)]
    else:
        class_names = sorted({label for _, _, label, _, _ in train_rows})
    by_name = {name: i for i, name in enumerate(class_names)}
    subsets = {}
    for subset, (path, rows) in parsed.items():
        records = []
        for number, video, label, start, end in rows:
            key = str(int(label)) if integer and label.isdigit() else label
            if key not in by_name:
                raise DatasetLayoutError(
                    f"{path}:{number}: label {quote(label)} never occurs in the training list "
                    f"{train_path} ("
                    + (
                        "integer labels 0..." + str(len(class_names) - 1)
                        if integer
                        else f"{len(class_names)} class names"
                    )
                    + ")"
                )
            records.append(
                VideoRecord(
                    resolve(video) if Path(video).is_absolute() else root / video,
                    by_name[key],
                    start,
                    end,
                )
            )
        subsets[subset] = records
    return VideoIndex(class_names, subsets)
