"""The plain records that dataset formats produce and the datamodule consumes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

NO_LABEL = -1  # the ``label`` of a multi-label record without any label (all negatives)


@dataclass(frozen=True)
class TimedLabel:
    """One label of a multi-label record, over the whole video (``start_sec`` and ``end_sec``
    ``None``) or over a span of it in seconds (Charades' actions)."""

    label: int
    start_sec: float | None = None
    end_sec: float | None = None

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the label holds somewhere in ``[start, end]`` seconds."""
        return ((self.start_sec is None or self.start_sec <= end)
                and (self.end_sec is None or self.end_sec >= start))


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video (or a time window of one).

    ``start_sec``/``end_sec`` restrict sampling to a window of an untrimmed video; ``None`` means
    the whole file. ``group`` names the source the video was cut from, as the format declares
    it (UCF101's ``gXX``, HMDB51's clip name without its number, Kinetics' YouTube id): videos
    of one group and class stay on one side of a validation split carved from training
    (``data.val_from_train``); ``None``: the video is its own group.

    A multi-label record (``task=multilabel``: a CSV row ``path,"a;b"``, a Charades video)
    lists its labels in ``actions``, each over the whole video or a span of it; its ``label``
    is the first of them (:data:`NO_LABEL` when it has none), which stratified splits use.
    """

    path: Path
    label: int
    start_sec: float | None = None
    end_sec: float | None = None
    group: str | None = None
    actions: tuple[TimedLabel, ...] = ()

    @property
    def video_id(self) -> str:
        return self.path.stem

    @property
    def multilabel(self) -> bool:
        return bool(self.actions) or self.label == NO_LABEL

    def labels(self) -> list[int]:
        """Every label of the video, sorted, each once (``[label]`` for a single-label
        record)."""
        if not self.multilabel:
            return [self.label]
        return sorted({action.label for action in self.actions})

    def labels_between(self, start: float, end: float) -> list[int]:
        """The labels that hold somewhere in ``[start, end]`` seconds of the video (a clip's
        span): those of the actions it overlaps; every label of a record without spans."""
        if not self.multilabel:
            return [self.label]
        return sorted({a.label for a in self.actions if a.overlaps(start, end)})


def subset_kind(subset: str) -> str:
    """``train``, ``val`` or ``test``: what a subset is used for (``val/<name>``, a further
    validation set, is ``val``)."""
    return subset.split("/", 1)[0]


def validation_set_name(path: str | Path, taken: set[str]) -> str:
    """The name a validation set's metrics carry (``val/<name>/top1``): its list file's stem
    in letters, digits, ``_``, ``-`` and ``.``, made unique among ``taken`` (which it joins)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(path)).stem).strip("_.") or "set"
    name, number = stem, 2
    while name in taken:
        name, number = f"{stem}_{number}", number + 1
    taken.add(name)
    return name


@dataclass
class VideoIndex:
    """Everything a format reads from a dataset's annotations.

    ``missing`` lists annotation entries whose file does not exist (they are not in the subsets).
    Several validation sets: the first is the subset ``val`` (named ``val_name`` when it has a
    name, e.g. its list file's), each further one the subset ``val/<name>`` (``extra_val``
    lists the names in order).
    """

    class_names: list[str]
    subsets: dict[str, list[VideoRecord]]
    missing: list[Path] = field(default_factory=list)
    val_name: str | None = None
    extra_val: list[str] = field(default_factory=list)
    val_carved: bool = False  # ``val`` was carved from the training videos

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def multilabel(self) -> bool:
        """Whether any record has several labels, or labels over spans (a multi-label
        dataset, for ``task=multilabel``)."""
        return any(r.multilabel for records in self.subsets.values() for r in records)

    def reorder_classes(self, class_names: list[str]) -> None:
        """Number the classes as ``class_names`` does (the same names in another order: a CSV
        list's sorted names against a checkpoint's ``classInd.txt`` order), relabelling every
        record, so labels match a model by name, not by position."""
        names, wanted = [str(n) for n in self.class_names], [str(n) for n in class_names]
        if sorted(names) != sorted(wanted) or len(set(wanted)) != len(wanted):
            raise ValueError("reorder_classes needs the same class names, each once")
        new = {name: i for i, name in enumerate(wanted)}
        label = {old: new[name] for old, name in enumerate(names)} | {NO_LABEL: NO_LABEL}
        self.subsets = {subset: [replace(r, label=label[r.label], actions=tuple(
            replace(a, label=label[a.label]) for a in r.actions)) for r in records]
            for subset, records in self.subsets.items()}
        self.class_names = list(class_names)

    @property
    def validation_sets(self) -> list[tuple[str, str | None]]:
        """``(subset, name)`` of each validation set, the first (``val``) first."""
        return [("val", self.val_name), *((f"val/{name}", name) for name in self.extra_val)]
