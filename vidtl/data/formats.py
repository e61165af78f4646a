"""Dataset formats: each turns a dataset's annotations into a :class:`VideoIndex`.

A format is a function ``(root, **options) -> VideoIndex`` registered by name with
:func:`register_format`. It reads annotations only; :func:`load_index` then checks which files
exist. Every layout error names the file (and line) and the layout that was expected.
"""

from __future__ import annotations

import csv
import inspect
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from vidtl.data.records import VideoIndex, VideoRecord

log = logging.getLogger(__name__)

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
FORMATS: dict[str, FormatFn] = {}


class DatasetLayoutError(ValueError):
    """A dataset's files or annotations do not have the expected layout."""


def register_format(name: str) -> Callable[[FormatFn], FormatFn]:
    """Register ``fn(root, **options) -> VideoIndex`` as dataset format ``name``."""

    def wrap(fn: FormatFn) -> FormatFn:
        FORMATS[name] = fn
        return fn

    return wrap


def load_index(format: str, root: str | Path, strict: bool = False, **options) -> VideoIndex:
    """Read dataset ``root`` in ``format``; drop (or, if ``strict``, refuse) missing files.

    ``options`` that the format does not take and that are ``None`` are ignored, so one data
    config can carry the keys of every format.
    """
    if format not in FORMATS:
        raise DatasetLayoutError(f"unknown dataset format {format!r}; known: {sorted(FORMATS)}")
    root = Path(root).expanduser()
    if not root.is_dir():
        layout = LAYOUTS.get(format, f"the {format} layout")
        raise DatasetLayoutError(
            f"dataset root {root} does not exist or is not a folder; expected {layout}"
        )
    fn = FORMATS[format]
    params = inspect.signature(fn).parameters
    accepted = {k: v for k, v in options.items() if k in params}
    ignored = [k for k, v in options.items() if k not in params and v is not None]
    if ignored:
        log.warning("format %s ignores the options %s", format, ignored)
    index = fn(root, **accepted)
    missing: list[Path] = []
    for name, records in index.subsets.items():
        present = []
        for record in records:
            (present if record.path.is_file() else missing).append(record)
        index.subsets[name] = present
    index.missing = sorted({r.path for r in missing})
    if index.missing:
        shown = "\n  ".join(str(p) for p in index.missing[:10])
        more = f"\n  ... and {len(index.missing) - 10} more" if len(index.missing) > 10 else ""
        message = (
            f"{len(index.missing)} annotated videos are missing under {root}:\n  {shown}{more}"
        )
        if strict:
            raise DatasetLayoutError(message + "\n(data.strict=true; set it to false to skip them)")
        log.warning("%s\nThey are skipped (data.strict=true makes this an error).", message)
    if not index.subsets.get("train") and not index.subsets.get("val"):
        raise DatasetLayoutError(f"no videos found for dataset {format} under {root}")
    return index


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetLayoutError(f"annotation file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetLayoutError(f"cannot read annotation file {path}: {error}") from None


def _find_annotation_dir(
    root: Path,
    annotation_dir: str | Path | None,
    marker: str,
    candidates: Iterable[str],
    layout: str,
) -> Path:
    """The folder holding ``marker`` (a file name or glob): the given one or one under root."""
    if annotation_dir is not None:
        folder = Path(annotation_dir).expanduser()
        if not folder.is_absolute() and not folder.exists():
            folder = root / folder
        if not any(folder.glob(marker)):
            raise DatasetLayoutError(
                f"no {marker} in annotation folder {folder}; expected {layout}"
            )
        return folder
    searched = [root / c for c in candidates] + [root]
    for folder in searched:
        if folder.is_dir() and any(folder.glob(marker)):
            return folder
    raise DatasetLayoutError(
        f"no {marker} found under {root} (searched {', '.join(str(s) for s in searched)}); "
        f"expected {layout}; set data.annotation_dir to the folder that holds it"
    )


UCF101_LAYOUT = (
    "UCF101 layout: <root>/<ClassName>/v_<ClassName>_gXX_cYY.avi and classInd.txt, "
    "trainlist0N.txt, testlist0N.txt in data.annotation_dir (default: <root>/ucfTrainTestlist)"
)


@register_format("ucf101")
def ucf101(root: Path, split: int = 1, annotation_dir: str | Path | None = None) -> VideoIndex:
    """UCF101: ``classInd.txt``, ``trainlist0{split}.txt`` and ``testlist0{split}.txt``.

    The test list has no label column; its label comes from the class folder. UCF101 has no
    separate validation split, so ``val`` and ``test`` are both the test list.
    """
    if split not in (1, 2, 3):
        raise DatasetLayoutError(f"ucf101 data.split must be 1, 2 or 3, got {split!r}")
    folder = _find_annotation_dir(
        root,
        annotation_dir,
        "classInd.txt",
        ["ucfTrainTestlist", "annotations", "splits"],
        UCF101_LAYOUT,
    )
    class_file = folder / "classInd.txt"
    class_names: list[str] = []
    for number, line in enumerate(_read_lines(class_file), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(class_names) + 1:
            raise DatasetLayoutError(
                f"{class_file}:{number}: expected '<index> <ClassName>' with indices 1, 2, ... "
                f"in order, got {line!r}"
            )
        class_names.append(parts[1])
    by_name = {name.lower(): i for i, name in enumerate(class_names)}

    def read_list(path: Path, labelled: bool) -> list[VideoRecord]:
        records = []
        for number, line in enumerate(_read_lines(path), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 2 or (labelled and len(parts) != 2):
                expected = "'<Class>/<video> <label>'" if labelled else "'<Class>/<video>'"
                raise DatasetLayoutError(f"{path}:{number}: expected {expected}, got {line!r}")
            relative = parts[0]
            if len(parts) == 2:
                if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(class_names):
                    raise DatasetLayoutError(
                        f"{path}:{number}: label {parts[1]!r} is not a class index 1..."
                        f"{len(class_names)} of {class_file}"
                    )
                label = int(parts[1]) - 1
            else:
                class_dir = relative.split("/")[0].lower()
                if class_dir not in by_name:
                    raise DatasetLayoutError(
                        f"{path}:{number}: class folder {relative.split('/')[0]!r} is not in "
                        f"{class_file}"
                    )
                label = by_name[class_dir]
            records.append(VideoRecord(root / relative, label))
        return records

    train = read_list(folder / f"trainlist0{split}.txt", labelled=True)
    test = read_list(folder / f"testlist0{split}.txt", labelled=False)
    return VideoIndex(class_names, {"train": train, "val": test, "test": test})


HMDB51_LAYOUT = (
    "HMDB51 layout: <root>/<class>/<video>.avi and the official split files "
    "<class>_test_split<N>.txt ('<video>.avi <0|1|2>', 1 = train, 2 = test) in data.annotation_dir"
)


@register_format("hmdb51")
def hmdb51(root: Path, split: int = 1, annotation_dir: str | Path | None = None) -> VideoIndex:
    """HMDB51: one ``<class>_test_split<N>.txt`` per class (1 = train, 2 = test, 0 = unused)."""
    if split not in (1, 2, 3):
        raise DatasetLayoutError(f"hmdb51 data.split must be 1, 2 or 3, got {split!r}")
    marker = f"*_test_split{split}.txt"
    folder = _find_annotation_dir(
        root,
        annotation_dir,
        marker,
        ["testTrainMulti_7030_splits", "splits", "annotations"],
        HMDB51_LAYOUT,
    )
    files = sorted(folder.glob(marker))
    class_names = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    subsets: dict[str, list[VideoRecord]] = {"train": [], "test": []}
    for label, (name, path) in enumerate(zip(class_names, files)):
        for number, line in enumerate(_read_lines(path), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetLayoutError(
                    f"{path}:{number}: expected '<video> <0|1|2>', got {line!r}"
                )
            if parts[1] == "0":
                continue
            subset = "train" if parts[1] == "1" else "test"
            subsets[subset].append(VideoRecord(root / name / parts[0], label))
    subsets["val"] = subsets["test"]
    return VideoIndex(class_names, subsets)


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


@register_format("kinetics")
@register_format("kinetics400")
def kinetics(root: Path, annotations: str | Path | None = None) -> VideoIndex:
    """Kinetics (any version): official CSVs; clips found anywhere under ``root`` by file name."""
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

    rows: list[tuple[Path, int, str, str, str]] = []  # file, line, subset, label, clip name
    for path in csv_files:
        lines = _read_lines(path)
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader, [])]
        required = ("label", "youtube_id", "time_start", "time_end")
        if not all(h in header for h in required):
            raise DatasetLayoutError(
                f"{path}:1: expected a header with {', '.join(required)}[, split], got {header}"
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
            except (IndexError, ValueError):
                raise DatasetLayoutError(
                    f"{path}:{number}: expected label,youtube_id,time_start,time_end,split, "
                    f"got {','.join(row)!r}"
                ) from None
            subset = _KINETICS_SPLITS.get(split_name.lower())
            if subset is None:
                raise DatasetLayoutError(
                    f"{path}:{number}: unknown split {split_name!r}; expected one of "
                    f"{sorted(_KINETICS_SPLITS)}"
                )
            rows.append((path, number, subset, label, clip))

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
                f"{path}:{number}: label {label!r} never occurs in the training rows"
            )
        file = on_disk.get(clip, root / subset / label / f"{clip}.mp4")
        subsets[subset].append(VideoRecord(file, by_name[label]))
    if not subsets["test"]:
        del subsets["test"]
    return VideoIndex(class_names, subsets)


FOLDER_LAYOUT = (
    "folder layout: <root>/train/<class>/<video>, <root>/val/<class>/<video>, [<root>/test/...]"
)


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)


@register_format("folder")
def folder(root: Path) -> VideoIndex:
    """A folder per split holding a folder per class; classes come from ``train/``."""
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DatasetLayoutError(f"{train_dir} does not exist; expected {FOLDER_LAYOUT}")
    class_names = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not class_names:
        raise DatasetLayoutError(f"{train_dir} has no class folders; expected {FOLDER_LAYOUT}")
    by_name = {name: i for i, name in enumerate(class_names)}
    subsets: dict[str, list[VideoRecord]] = {}
    for subset, names in (("train", ["train"]), ("val", ["val", "validation"]), ("test", ["test"])):
        split_dir = next((root / n for n in names if (root / n).is_dir()), None)
        if split_dir is None:
            continue
        records = []
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if class_dir.name not in by_name:
                raise DatasetLayoutError(
                    f"class folder {class_dir} does not exist in {train_dir}; "
                    f"known classes: {class_names[:10]}{' ...' if len(class_names) > 10 else ''}"
                )
            records += [VideoRecord(p, by_name[class_dir.name]) for p in _videos_in(class_dir)]
        subsets[subset] = records
    if "val" not in subsets:
        if "test" not in subsets:
            raise DatasetLayoutError(f"{root} has neither val/ nor test/; expected {FOLDER_LAYOUT}")
        subsets["val"] = subsets["test"]
    return VideoIndex(class_names, subsets)


CSV_LAYOUT = (
    "CSV rows 'path,label[,start_sec,end_sec]' (header optional, paths relative to data.root)"
)


def _read_csv_list(path: Path) -> list[tuple[int, str, str, float | None, float | None]]:
    rows = []
    for number, row in enumerate(csv.reader(_read_lines(path)), 1):
        if not row or not "".join(row).strip():
            continue
        cells = [c.strip() for c in row]
        if number == 1 and cells[0].lower() == "path":
            continue
        if len(cells) not in (2, 4) or not cells[0] or not cells[1]:
            raise DatasetLayoutError(
                f"{path}:{number}: expected {CSV_LAYOUT}, got {','.join(row)!r}"
            )
        start = end = None
        if len(cells) == 4:
            try:
                start, end = float(cells[2]), float(cells[3])
            except ValueError:
                raise DatasetLayoutError(
                    f"{path}:{number}: start and end must be seconds, "
                    f"got {cells[2]!r}, {cells[3]!r}"
                ) from None
        rows.append((number, cells[0], cells[1], start, end))
    return rows


@register_format("csv")
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
        s: (resolve(p), _read_csv_list(resolve(p))) for s, p in lists.items() if p is not None
    }
    train_path, train_rows = parsed["train"]
    if not train_rows:
        raise DatasetLayoutError(f"{train_path} lists no videos; expected {CSV_LAYOUT}")
    integer = all(re.fullmatch(r"\d+", label) for _, _, label, _, _ in train_rows)
    if integer:
        class_names = [str(i) for i in range(max(int(r[2]) for r in train_rows) + 1)]
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
                    f"{path}:{number}: label {label!r} never occurs in the training list "
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


LAYOUTS = {
    "ucf101": UCF101_LAYOUT,
    "hmdb51": HMDB51_LAYOUT,
    "kinetics": KINETICS_LAYOUT,
    "kinetics400": KINETICS_LAYOUT,
    "folder": FOLDER_LAYOUT,
    "csv": CSV_LAYOUT,
}
