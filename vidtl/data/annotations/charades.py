"""Charades (v1): the official CSVs, whose ``actions`` cell lists each video's actions with
their spans (a multi-label dataset), the classes file, and ``<id>.mp4`` videos."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import read_lines
from vidtl.data.annotations.formats import MAX_CLASSES, DatasetLayoutError, register_format
from vidtl.data.annotations.records import NO_LABEL, TimedLabel, VideoIndex, VideoRecord

CHARADES_LAYOUT = (
    "Charades layout: Charades_v1_train.csv and Charades_v1_test.csv (a header with id and "
    "actions, each action 'c092 11.90 21.20' - class id, start and end seconds - separated by "
    "';') and Charades_v1_classes.txt (lines 'c000 Holding some clothes') in "
    "data.annotation_dir (default: <root>), and the videos <id>.mp4 in data.video_dir "
    "(default: <root>/Charades_v1_480)"
)
TRAIN_CSV, TEST_CSV, CLASSES_FILE = ("Charades_v1_train.csv", "Charades_v1_test.csv",
                                     "Charades_v1_classes.txt")
_CLASS_ID = re.compile(r"c([0-9]{1,6})")  # ASCII digits only
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")
_SECONDS = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _folder(root: Path, value: str | Path) -> Path:
    """A folder an option names: as given when absolute, else under ``root``."""
    folder = Path(str(value)).expanduser()
    return folder if folder.is_absolute() else root / folder


def _annotation_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DatasetLayoutError(f"annotation file {path} does not exist; expected "
                                 f"{CHARADES_LAYOUT}")
    return path


def _unique(names: list[str], ids: list[str]) -> list[str]:
    """``names`` with each repeated one suffixed by its class id (``"Opening a door (c042)"``),
    so that every class has its own name."""
    taken: set[str] = set()
    unique = []
    for name, class_id in zip(names, ids):
        candidate, number = name, 2
        while candidate in taken:
            candidate = f"{name} ({class_id})" if number == 2 else f"{name} ({class_id}-{number})"
            number += 1
        taken.add(candidate)
        unique.append(candidate)
    return unique


def read_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    """The class names of classes file ``path`` in id order (``c000`` is class 0), and each
    id's class; the ids must be ``c000...`` up to the number of classes, each once."""
    found: dict[int, tuple[str, str]] = {}
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        match = _CLASS_ID.fullmatch(parts[0])
        if len(parts) != 2 or match is None:
            raise DatasetLayoutError(f"{path}:{number}: expected 'c<number> <class name>' "
                                     f"(c000 Holding some clothes), got {quote(line)}")
        index = int(match.group(1))
        if index >= MAX_CLASSES:
            raise DatasetLayoutError(f"{path}:{number}: class id {quote(parts[0])} asks for "
                                     f"more than {MAX_CLASSES} classes")
        if index in found:
            raise DatasetLayoutError(f"{path}:{number}: class id {quote(parts[0])} is listed "
                                     f"twice")
        found[index] = (parts[0], parts[1].strip())
    if not found:
        raise DatasetLayoutError(f"{path} lists no classes; expected {CHARADES_LAYOUT}")
    absent = [i for i in range(len(found)) if i not in found]
    if absent:
        raise DatasetLayoutError(f"{path}: class ids must be c000 up to the number of classes, "
                                 f"each once; c{absent[0]:03d} is missing")
    ids = [found[i][0] for i in range(len(found))]
    names = _unique([found[i][1] for i in range(len(found))], ids)
    return names, {class_id: label for label, class_id in enumerate(ids)}


def _seconds(text: str) -> float:
    """``text`` as seconds: a plain decimal number (ASCII digits, no ``_``, no exponent),
    finite, not negative (ValueError otherwise)."""
    if not _SECONDS.fullmatch(text):
        raise ValueError(text)
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def parse_actions(cell: str, classes: dict[str, int], where: str) -> tuple[TimedLabel, ...]:
    """The actions of an ``actions`` cell (``c092 11.90 21.20;c147 0.00 12.60``; empty: none),
    in order; ``where`` (``file:line``) starts every error."""
    if not cell.strip():
        return ()
    actions = []
    for part in cell.split(";"):
        fields = part.split()
        if len(fields) != 3:
            raise DatasetLayoutError(f"{where}: expected actions 'c092 11.90 21.20;...' (class "
                                     f"id, start and end seconds), got {quote(part)}")
        class_id, start, end = fields
        if class_id not in classes:
            raise DatasetLayoutError(f"{where}: class id {quote(class_id)} is not in "
                                     f"{CLASSES_FILE}")
        try:
            first, last = _seconds(start), _seconds(end)
        except ValueError:
            raise DatasetLayoutError(f"{where}: action {quote(part)}: start and end must be "
                                     f"seconds (finite, not negative)") from None
        if first > last:
            raise DatasetLayoutError(f"{where}: action {quote(part)} starts after it ends")
        actions.append(TimedLabel(classes[class_id], first, last))
    return tuple(actions)


def read_videos(path: Path, videos: Path, classes: dict[str, int]) -> list[VideoRecord]:
    """The records of Charades CSV ``path`` (columns read by header name: ``id`` and
    ``actions``; the others ignored), videos ``<videos>/<id>.mp4``."""
    reader = csv.reader(read_lines(path))
    header = [h.strip().lower() for h in next(reader, [])]
    if "id" not in header or "actions" not in header:
        raise DatasetLayoutError(f"{path}:1: expected a header with id and actions "
                                 f"(id,subject,scene,...,actions,length), got "
                                 f"{quote(','.join(header))}")
    id_column, actions_column = header.index("id"), header.index("actions")
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, 2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}:{number}"
        if len(row) <= max(id_column, actions_column):
            raise DatasetLayoutError(f"{where}: expected {len(header)} columns "
                                     f"({','.join(header)}), got {quote(','.join(row))}")
        video_id = row[id_column].strip()
        if not _PLAIN_ID.fullmatch(video_id) or video_id in (".", ".."):
            raise DatasetLayoutError(f"{where}: id {quote(video_id)} is not a plain name (the "
                                     f"video is <id>.mp4 in the video folder)")
        if video_id in seen:
            raise DatasetLayoutError(f"{where}: id {quote(video_id)} is listed twice (first "
                                     f"on line {seen[video_id]})")
        seen[video_id] = number
        actions = parse_actions(row[actions_column], classes, where)
        label = actions[0].label if actions else NO_LABEL
        records.append(VideoRecord(videos / f"{video_id}.mp4", label, actions=actions))
    return records


@register_format("charades", layout=CHARADES_LAYOUT)
def charades(root: Path, annotation_dir: str | Path | None = None,
             video_dir: str | Path = "Charades_v1_480") -> VideoIndex:
    """Charades (157 classes, multi-label: each video lists its actions with their spans).
    ``train`` is Charades_v1_train.csv; ``val`` and ``test`` are both Charades_v1_test.csv:
    Charades has no validation split, so validation is the test list, as for UCF101
    (``data.val_from_train`` carves one from the training videos). A video without actions
    has ``label`` :data:`NO_LABEL` (every class negative). ``annotation_dir`` and
    ``video_dir`` are absolute or under ``root``."""
    folder = _folder(root, annotation_dir) if annotation_dir is not None else root
    videos = _folder(root, video_dir)
    class_names, classes = read_classes(_annotation_file(folder, CLASSES_FILE))
    train = read_videos(_annotation_file(folder, TRAIN_CSV), videos, classes)
    test = read_videos(_annotation_file(folder, TEST_CSV), videos, classes)
    return VideoIndex(class_names, {"train": train, "val": test, "test": test})
