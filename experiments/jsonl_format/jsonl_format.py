"""A dataset format from outside the vidtl package: one JSON object per line.

``annotations.jsonl`` (under the dataset root, or the path ``data.annotations`` names) holds
lines such as ``{"video": "clips/a.mp4", "label": "jump", "subset": "train"}``; ``subset`` is
``train``, ``val`` or ``test``; video paths are relative to the root (or absolute). Classes are
the sorted labels of the training lines. A format is just this function: vidtl reaches it by
``data.format: {_target_: ..., _partial_: true}`` (see ``data/jsonl.yaml``).
"""

from __future__ import annotations

import json
from pathlib import Path

from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.records import VideoIndex, VideoRecord

LAYOUT = 'JSON lines {"video": PATH, "label": NAME, "subset": "train"|"val"|"test"}'


def read_jsonl(root: Path, annotations: str | Path = "annotations.jsonl") -> VideoIndex:
    """The :class:`VideoIndex` of ``root`` from a JSON-lines annotation file."""
    path = Path(annotations)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise DatasetLayoutError(f"annotation file {path} does not exist; expected {LAYOUT}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            rows.append((str(entry["video"]), str(entry["label"]), str(entry["subset"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetLayoutError(f"{path}:{number}: expected {LAYOUT}, got {line!r} "
                                     f"({type(error).__name__}: {error})") from None
        if rows[-1][2] not in ("train", "val", "test"):
            raise DatasetLayoutError(f"{path}:{number}: subset must be train, val or test, "
                                     f"got {rows[-1][2]!r}")
    class_names = sorted({label for _, label, subset in rows if subset == "train"})
    labels = {name: i for i, name in enumerate(class_names)}
    subsets: dict[str, list[VideoRecord]] = {"train": [], "val": [], "test": []}
    for video, label, subset in rows:
        if label not in labels:
            raise DatasetLayoutError(f"{path}: label {label!r} of {video} has no training video")
        subsets[subset].append(VideoRecord(root / video, labels[label]))
    return VideoIndex(class_names, subsets)
