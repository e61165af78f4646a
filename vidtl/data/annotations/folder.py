"""A folder per split holding a folder per class."""

from __future__ import annotations

from pathlib import Path

from vidtl.data.annotations.formats import VIDEO_EXTENSIONS, DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

FOLDER_LAYOUT = (
    "folder layout: <root>/train/<class>/<video>, and <root>/val/<class>/<video> or "
    "<root>/test/<class>/<video> or both (without val/, the test videos validate)"
)


def videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)


@register_format("folder", layout=FOLDER_LAYOUT)
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
            records += [VideoRecord(p, by_name[class_dir.name]) for p in videos_in(class_dir)]
        subsets[subset] = records
    if "val" not in subsets:
        if "test" not in subsets:
            raise DatasetLayoutError(f"{root} has neither val/ nor test/; expected {FOLDER_LAYOUT}")
        subsets["val"] = subsets["test"]
    return VideoIndex(class_names, subsets)
