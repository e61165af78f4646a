"""Further validation sets for any dataset format (``data.extra_val_lists``): CSV lists of
``path,label[,start_sec,end_sec]`` rows, paths relative to ``data.root``, labels among the
dataset's class names. Each becomes the subset ``val/<name>`` (its file's stem), validated
every epoch next to the format's own validation set and logged as ``val/<name>/top1``..."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vidtl.data.annotations.csv_list import CSV_LAYOUT, labelled_records, list_path, read_csv_list
from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.records import VideoIndex, validation_set_name


def add_validation_lists(index: VideoIndex, root: Path, lists: Sequence[str | Path]) -> None:
    """Add each list of ``lists`` to ``index`` as a further validation set."""
    taken = {name for name in (index.val_name, *index.extra_val) if name}
    shown = ", ".join(index.class_names[:3]) + (", ..." if index.num_classes > 3 else "")
    for given in lists:
        path = list_path(root, given)
        rows = read_csv_list(path)
        if not rows:
            raise DatasetLayoutError(f"{path} (data.extra_val_lists) lists no videos; expected "
                                     f"{CSV_LAYOUT}")
        name = validation_set_name(path, taken)
        index.subsets[f"val/{name}"] = labelled_records(
            path, rows, root, index.class_names,
            f"is not a class of the dataset ({index.num_classes} classes: {shown})")
        index.extra_val.append(name)
