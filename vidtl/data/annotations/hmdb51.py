"""HMDB51: the official per-class split files."""

from __future__ import annotations

import re
from pathlib import Path

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import find_annotation_dir, read_lines
from vidtl.data.annotations.formats import DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

HMDB51_LAYOUT = (
    "HMDB51 layout: <root>/<class>/<video>.avi and the official split files "
    "<class>_test_split<N>.txt ('<video>.avi <0|1|2>', 1 = train, 2 = test) in data.annotation_dir"
)


def source_of(video: str, class_name: str) -> str:
    """The source a clip was cut from: its name before ``_<class>_``
    (``Aussie_Brunette_Brushing_Hair_II`` of ``..._brush_hair_u_nm_np1_ri_med_3.avi``), the
    same for its clips of every action; without the class in it, the name less its number."""
    stem = Path(video).stem
    cut = stem.find(f"_{class_name}_")
    return stem[:cut] if cut > 0 else re.sub(r"_\d+$", "", stem)


@register_format("hmdb51", layout=HMDB51_LAYOUT)
def hmdb51(root: Path, split: int = 1, annotation_dir: str | Path | None = None) -> VideoIndex:
    """HMDB51: one ``<class>_test_split<N>.txt`` per class (1 = train, 2 = test, 0 = unused)."""
    if split not in (1, 2, 3):
        raise DatasetLayoutError(f"hmdb51 data.split must be 1, 2 or 3, got {split!r}")
    marker = f"*_test_split{split}.txt"
    folder = find_annotation_dir(
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
        for number, line in enumerate(read_lines(path), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetLayoutError(
                    f"{path}:{number}: expected '<video> <0|1|2>', got {quote(line)}"
                )
            if parts[1] == "0":
                continue
            subset = "train" if parts[1] == "1" else "test"
            subsets[subset].append(VideoRecord(root / name / parts[0], label,
                                               group=source_of(parts[0], name)))
    subsets["val"] = subsets["test"]
    return VideoIndex(class_names, subsets)
