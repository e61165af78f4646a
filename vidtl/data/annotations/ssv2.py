"""Something-Something v2: the official JSON annotations and ``<id>.webm`` videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidtl.core import safe_files
from vidtl.core.quoting import quote
from vidtl.data.annotations.formats import DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

SSV2_LAYOUT = (
    "Something-Something v2 layout: labels.json ({\"<label name>\": \"<id>\"}), train.json and "
    "validation.json ([{\"id\", \"label\", \"template\", \"placeholders\"}, ...]), "
    "each also as something-something-v2-<name>.json, in "
    "data.annotation_dir (default: <root>/annotations or <root>), and the videos <id>.webm in "
    "data.video_dir (default: <root>/20bn-something-something-v2 or <root>)"
)
_VIDEO_DIRS = ("20bn-something-something-v2", "videos")
_ANNOTATION_DIRS = ("annotations", "labels")


def _annotation_file(folder: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (folder / f"{name}.json", folder / f"something-something-v2-{name}.json"):
        if candidate.is_file():
            return candidate
    if required:
        raise DatasetLayoutError(f"no {name}.json in {folder}; expected {SSV2_LAYOUT}")
    return None


def _read_json(path: Path) -> Any:
    """The JSON of ``path``, read as a file vidtl did not write (a regular file of at most
    :data:`~vidtl.core.safe_files.MAX_ANNOTATION_BYTES`); nesting too deep for the parser is
    one :class:`DatasetLayoutError` naming the file, like any other failure."""
    try:
        return json.loads(safe_files.read_text(path, what="annotation file"))
    except json.JSONDecodeError as error:
        raise DatasetLayoutError(
            f"{path}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno}); "
            f"expected {SSV2_LAYOUT}") from None
    except RecursionError:
        raise DatasetLayoutError(f"{path}: JSON nested too deep to read; expected "
                                 f"{SSV2_LAYOUT}") from None
    except safe_files.RefusedFileError as error:
        raise DatasetLayoutError(str(error)) from None
    except OSError as error:
        raise DatasetLayoutError(f"cannot read annotation file {path}: {error.strerror}") \
            from None


def _class_names(path: Path) -> list[str]:
    """Class names in the order of their ids in ``labels.json``."""
    labels = _read_json(path)
    if not isinstance(labels, dict) or not labels:
        raise DatasetLayoutError(
            f"{path}: expected an object {{\"<label name>\": \"<id>\", ...}}, got "
            f"{type(labels).__name__}")
    ids: dict[int, str] = {}
    for name, value in labels.items():
        try:
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise TypeError
            ids[int(value)] = name
        except (TypeError, ValueError):
            raise DatasetLayoutError(
                f"{path}: label {quote(name)} has id {quote(value)}; expected an integer") \
                from None
    if sorted(ids) != list(range(len(ids))):
        raise DatasetLayoutError(
            f"{path}: label ids must be 0..{len(labels) - 1} once each, got {sorted(ids)[:10]}...")
    return [ids[i] for i in range(len(ids))]


def template_label(template: str) -> str:
    """The class name of an annotation's template: the brackets around ``[something]`` removed
    (``"Putting [something] on a surface"`` is class ``"Putting something on a surface"``)."""
    return template.replace("[", "").replace("]", "")


def _records(path: Path, videos: Path, classes: dict[str, int]) -> list[VideoRecord]:
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise DatasetLayoutError(
            f"{path}: expected a list of {{\"id\", \"template\", ...}}, got "
            f"{type(entries).__name__}")
    records = []
    for number, entry in enumerate(entries):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise DatasetLayoutError(f"{where}: expected an object with an \"id\", got "
                                     f"{quote(entry)}")
        video_id = entry["id"]
        if not isinstance(video_id, (str, int)) or isinstance(video_id, bool) \
                or not str(video_id).strip() or "/" in str(video_id) \
                or str(video_id) in (".", ".."):
            raise DatasetLayoutError(f"{where}: id {quote(video_id)} is not a plain name (the "
                                     f"video is <id>.webm in the video folder)")
        if not isinstance(entry.get("template"), str):
            raise DatasetLayoutError(
                f"{where} (id {quote(video_id)}): no \"template\" text; expected {SSV2_LAYOUT}")
        name = template_label(entry["template"])
        if name not in classes:
            raise DatasetLayoutError(
                f"{where} (id {quote(video_id)}): template {quote(entry['template'])} names no "
                f"class of labels.json")
        records.append(VideoRecord(videos / f"{video_id}.webm", classes[name]))
    return records


@register_format("ssv2", layout=SSV2_LAYOUT)
def ssv2(root: Path, annotation_dir: str | Path | None = None,
         video_dir: str | Path | None = None) -> VideoIndex:
    """Something-Something v2 (174 classes). ``train`` is train.json; ``val`` and ``test`` are
    validation.json, as the field reports it (test.json has no labels: its videos are left out).
    """
    if annotation_dir is not None:
        folder = Path(annotation_dir).expanduser()
        folder = folder if folder.is_absolute() or folder.exists() else root / folder
    else:
        folder = next((root / d for d in _ANNOTATION_DIRS
                       if _annotation_file(root / d, "labels", required=False)), root)
    if video_dir is not None:
        videos = Path(video_dir).expanduser()
        videos = videos if videos.is_absolute() or videos.exists() else root / videos
    else:
        videos = next((root / d for d in _VIDEO_DIRS if (root / d).is_dir()), root)
    class_names = _class_names(_annotation_file(folder, "labels"))
    classes = {name: label for label, name in enumerate(class_names)}
    train = _records(_annotation_file(folder, "train"), videos, classes)
    validation = _records(_annotation_file(folder, "validation"), videos, classes)
    return VideoIndex(class_names, {"train": train, "val": validation, "test": validation})
