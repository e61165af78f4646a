"""Kinetics (any version): the official CSVs and clips named by YouTube id and time window."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import read_lines
from vidtl.data.annotations.formats import VIDEO_EXTENSIONS, DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

KINETICS_LAYOUT = (
    "Kinetics layout: the official CSVs (label,youtube_id,time_start,time_end,split) as "
    "data.annotations (one CSV, or a folder of train.csv / validate.csv / test.csv), and clips "
    "named {youtube_id}_{time_start:06d}_{time_end:06d}.mp4 under <root>/<split>/<label>/ or flat"
)
_KINETICS_SPLITS = {
    "train": "train",
    "val": "val",
    "validate": "val",
    "valid": "val",
    "test": "test",
}


def _csv_files(root: Path, annotations: str | Path | None) -> list[Path]:
    """The annotation CSVs: ``annotations`` (a CSV or a folder of split CSVs) or found."""
    if annotations is None:
        candidates = [root / "annotations", root]
        found = [c for c in candidates if any(c.glob("*.csv"))]
        if not found:
            raise DatasetLayoutError(f"no CSV found under {root}; expected {KINETICS_LAYOUT}")
        annotations = found[0]
    source = Path(annotations).expanduser()
    if source.is_dir():
        csv_files = sorted(p for p in source.glob("*.csv") if p.stem.lower() in _KINETICS_SPLITS)
        if not csv_files:
            raise DatasetLayoutError(
                f"no train.csv / validate.csv / test.csv in {source}; expected {KINETICS_LAYOUT}"
            )
    elif source.is_file():
        csv_files = [source]
    else:
        raise DatasetLayoutError(
            f"annotation file {source} does not exist; expected {KINETICS_LAYOUT}"
        )
    return csv_files


def _csv_rows(csv_files: list[Path]) -> list[tuple[Path, int, str, str, str]]:
    """``(file, line, subset, label, clip name)`` of every row, checked."""
    rows: list[tuple[Path, int, str, str, str]] = []
    for path in csv_files:
        lines = read_lines(path)
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader, [])]
        required = ("label", "youtube_id", "time_start", "time_end")
        if not all(h in header for h in required):
            raise DatasetLayoutError(
                f"{path}:1: expected a header with {', '.join(required)}[, split], "
                f"got {quote(','.join(header))}"
            )
        col = {h: i for i, h in enumerate(header)}
        for number, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                label = row[col["label"]].strip()
                clip = (
                    f"{row[col['youtube_id']].strip()}_{int(float(row[col['time_start']])):06d}"
                    f"_{int(float(row[col['time_end']])):06d}"
                )
                split_name = row[col["split"]].strip() if "split" in col else path.stem
            except (IndexError, ValueError, OverflowError):
                raise DatasetLayoutError(
                    f"{path}:{number}: expected label,youtube_id,time_start,time_end,split, "
                    f"got {quote(','.join(row))}"
                ) from None
            subset = _KINETICS_SPLITS.get(split_name.lower())
            if subset is None:
                raise DatasetLayoutError(
                    f"{path}:{number}: unknown split {quote(split_name)}; expected one of "
                    f"{sorted(_KINETICS_SPLITS)}"
                )
            rows.append((path, number, subset, label, clip))
    return rows


@register_format("kinetics", layout=KINETICS_LAYOUT)
@register_format("kinetics400", layout=KINETICS_LAYOUT)
def kinetics(root: Path, annotations: str | Path | None = None) -> VideoIndex:
    """Kinetics (any version): official CSVs; clips found anywhere under ``root`` by file name."""
    csv_files = _csv_files(root, annotations)
    rows = _csv_rows(csv_files)
    class_names = sorted({label for _, _, subset, label, _ in rows if subset == "train" and label})
    if not class_names:
        raise DatasetLayoutError(f"no labelled training rows in {', '.join(map(str, csv_files))}")
    by_name = {name: i for i, name in enumerate(class_names)}
    on_disk: dict[str, Path] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if name.lower().endswith(VIDEO_EXTENSIONS):
                on_disk.setdefault(os.path.splitext(name)[0], Path(directory) / name)
    subsets: dict[str, list[VideoRecord]] = {"train": [], "val": [], "test": []}
    for path, number, subset, label, clip in rows:
        if not label and subset == "test":
            continue  # unlabelled test rows cannot be evaluated
        if label not in by_name:
            raise DatasetLayoutError(
                f"{path}:{number}: label {quote(label)} never occurs in the training rows"
            )
        file = on_disk.get(clip, root / subset / label / f"{clip}.mp4")
        youtube_id = clip.rsplit("_", 2)[0]  # the clips of one YouTube video: one group
        subsets[subset].append(VideoRecord(file, by_name[label], group=youtube_id))
    if not subsets["test"]:
        del subsets["test"]
    return VideoIndex(class_names, subsets)
