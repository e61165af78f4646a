"""UCF101: the official class index and train/test lists."""

from __future__ import annotations

import re
from pathlib import Path

from vidtl.core.quoting import quote
from vidtl.data.annotations.annotation_files import find_annotation_dir, read_lines
from vidtl.data.annotations.formats import DatasetLayoutError, register_format
from vidtl.data.annotations.records import VideoIndex, VideoRecord

UCF101_LAYOUT = (
    "UCF101 layout: <root>/<ClassName>/v_<ClassName>_gXX_cYY.avi and classInd.txt, "
    "trainlist0N.txt, testlist0N.txt in data.annotation_dir (default: <root>/ucfTrainTestlist)"
)


def _group(relative: str) -> str | None:
    """``v_<Class>_gXX`` of ``v_<Class>_gXX_cYY``: the clips of one group of a class, cut
    from one source (``None`` when the name does not follow the pattern)."""
    found = re.fullmatch(r"(.+_g\d+)_c\d+", Path(relative).stem)
    return found.group(1) if found else None


@register_format("ucf101", layout=UCF101_LAYOUT)
def ucf101(root: Path, split: int = 1, annotation_dir: str | Path | None = None) -> VideoIndex:
    """UCF101: ``classInd.txt``, ``trainlist0{split}.txt`` and ``testlist0{split}.txt``.

    The test list has no label column; its label comes from the class folder. UCF101 has no
    separate validation split, so ``val`` and ``test`` are both the test list.
    """
    if split not in (1, 2, 3):
        raise DatasetLayoutError(f"ucf101 data.split must be 1, 2 or 3, got {split!r}")
    folder = find_annotation_dir(
        root,
        annotation_dir,
        "classInd.txt",
        ["ucfTrainTestlist", "annotations", "splits"],
        UCF101_LAYOUT,
    )
    class_file = folder / "classInd.txt"
    class_names: list[str] = []
    for number, line in enumerate(read_lines(class_file), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(class_names) + 1:
            raise DatasetLayoutError(
                f"{class_file}:{number}: expected '<index> <ClassName>' with indices 1, 2, ... "
                f"in order, got {quote(line)}"
            )
        class_names.append(parts[1])
    by_name = {name.lower(): i for i, name in enumerate(class_names)}

    def read_list(path: Path, labelled: bool) -> list[VideoRecord]:
        records = []
        for number, line in enumerate(read_lines(path), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) > 2 or (labelled and len(parts) != 2):
                expected = "'<Class>/<video> <label>'" if labelled else "'<Class>/<video>'"
                raise DatasetLayoutError(f"{path}:{number}: expected {expected}, got {quote(line)}")
            relative = parts[0]
            if len(parts) == 2:
                if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(class_names):
                    raise DatasetLayoutError(
                        f"{path}:{number}: label {quote(parts[1])} is not a class index 1..."
                        f"{len(class_names)} of {class_file}"
                    )
                label = int(parts[1]) - 1
            else:
                class_dir = relative.split("/")[0].lower()
                if class_dir not in by_name:
                    raise DatasetLayoutError(
                        f"{path}:{number}: class folder {quote(relative.split('/')[0])} is not in "
                        f"{class_file}"
                    )
                label = by_name[class_dir]
            records.append(VideoRecord(root / relative, label, group=_group(relative)))
        return records

    train = read_list(folder / f"trainlist0{split}.txt", labelled=True)
    test = read_list(folder / f"testlist0{split}.txt", labelled=False)
    return VideoIndex(class_names, {"train": train, "val": test, "test": test})
