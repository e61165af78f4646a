"""A validation split carved from the training videos (``data.val_from_train``), for datasets
whose official split has none: UCF101, HMDB51, SSv2 (whose validation set is what papers
report as the test), Kinetics without labelled test rows, a folder or CSV lists without one.

Without it, the best-epoch checkpoint, sweeps and searches would choose on the test videos.
With it, ``val`` is a seeded share of each class's training videos, whole groups at a time
(:attr:`VideoRecord.group`: a video's source stays on one side, in every class it appears in),
``train`` is the rest, and ``test`` is the official test list, or the format's validation set
when it has no test list. Each class draws from a stream of its own (the seed and the class
name), so videos missing or excluded in one class change no other class's split (unless a
group spans classes: then the classes it spans may change; ``vidtl-eval`` warns, see
:func:`carved_fingerprint`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidtl.core.atomic import write_text_atomic
from vidtl.core.errors import UserError
from vidtl.data.annotations.records import NO_LABEL, VideoIndex, VideoRecord

log = logging.getLogger(__name__)

CARVED_LIST = "val_from_train.csv"  # the carved validation videos, in the run folder


@dataclass(frozen=True)
class CarvedValidation:
    """``amount``: a share of the training videos (``0 < amount < 1``) or a number of them
    (an integer ``>= 1``), taken per class in proportion to its size; ``seed`` chooses which
    groups (the same seed, data and amount give the same split on every machine)."""

    amount: float | int
    seed: int = 0

    def __post_init__(self) -> None:
        amount = self.amount
        share = isinstance(amount, float) and 0 < amount < 1
        count = isinstance(amount, int) and not isinstance(amount, bool) and amount >= 1
        if not (share or count):
            raise UserError(f"data.val_from_train must be a share of the training videos "
                            f"(0 < x < 1, e.g. 0.1) or a number of them (an integer >= 1), got "
                            f"{amount!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"data.val_split_seed must be an integer >= 0, got {self.seed!r}")

    def share(self, training_videos: int) -> float:
        if isinstance(self.amount, float):
            return self.amount
        if self.amount >= training_videos:
            raise UserError(f"data.val_from_train={self.amount} asks for as many validation "
                            f"videos as there are training videos ({training_videos})")
        return self.amount / training_videos


def carve_validation(index: VideoIndex, carve: CarvedValidation) -> None:
    """Split ``index``'s training videos into ``train`` and ``val`` (in place)."""
    train = index.subsets.get("train") or []
    share = carve.share(len(train))
    chosen = _chosen_groups(train, share, carve.seed, index.class_names)
    if not chosen:
        raise UserError(f"data.val_from_train={carve.amount}: no class has its training videos "
                        f"in two or more groups, so none can give one to validation without "
                        f"leaving training ({len(train)} training videos)")
    official = index.subsets.get("val") or []
    if not index.subsets.get("test") and official:
        index.subsets["test"] = official
        log.info("the format's own validation set (%d videos) is the test set now",
                 len(official))
    elif official and [r.path for r in official] != [r.path for r in index.subsets["test"]]:
        log.info("the format's own validation set (%d videos) is left out: validation is "
                 "carved from training and the test list stays the test set", len(official))
    index.subsets["val"] = [r for r in train if _group(r) in chosen]
    index.subsets["train"] = [r for r in train if _group(r) not in chosen]
    index.val_name, index.val_carved = None, True
    carved = len(index.subsets["val"])
    log.info("validation carved from training (data.val_from_train=%s, seed %d, whole groups "
             "per class): %d validation and %d training videos", carve.amount, carve.seed,
             carved, len(index.subsets["train"]))
    if carved > 1.5 * share * len(train) + 1:
        log.warning("data.val_from_train=%s asked for about %d validation videos; whole groups "
                    "and at least one group per class (of those with two or more) give %d",
                    carve.amount, round(share * len(train)), carved)
    _warn_about_emptied_classes(index, train)


def _group(record: VideoRecord) -> str:
    return record.group if record.group is not None else str(record.path)


def _chosen_groups(train: list[VideoRecord], share: float, seed: int,
                   class_names: list[str]) -> set[str]:
    """Per class, its groups in a seeded order until ``share`` of its videos are taken (at
    least one group, never its last: a class with one group stays in training). A group
    chosen in one class goes to validation in every class it holds videos of."""
    sizes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in train:
        sizes[record.label][_group(record)] += 1
    chosen: set[str] = set()
    for label in sorted(sizes):
        groups = sorted(sizes[label])
        if len(groups) < 2:
            continue
        name = str(class_names[label]) if label >= 0 else "(no label)"  # NO_LABEL: none
        stream = zlib.crc32(name.encode())  # one stream per class
        order = [groups[i] for i in np.random.default_rng([seed, stream]).permutation(
            len(groups))]
        target = max(1, round(share * sum(sizes[label].values())))
        taken = sum(sizes[label][group] for group in groups if group in chosen)
        left = [group for group in order if group not in chosen]
        for group in left[:-1]:  # the last group stays in training
            if taken >= target:
                break
            chosen.add(group)
            taken += sizes[label][group]
    return chosen


def _warn_about_emptied_classes(index: VideoIndex, train: list[VideoRecord]) -> None:
    """A group shared by several classes can take a class's last training videos with it."""
    emptied = sorted({r.label for r in train} - {r.label for r in index.subsets["train"]}
                     - {NO_LABEL})
    if emptied:
        log.warning("the carved validation set holds every training video of %d classes (their "
                    "groups are shared with other classes): %s", len(emptied),
                    ", ".join(str(index.class_names[label]) for label in emptied[:10]))


def carved_fingerprint(index: VideoIndex, root: Path) -> str | None:
    """A digest of the carved validation videos (paths relative to ``root``), kept in the
    run's checkpoints so that an evaluation can tell whether it carved the same set; ``None``
    when validation was not carved."""
    if not index.val_carved:
        return None
    names = sorted(_shown(record.path, root) for record in index.subsets["val"])
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write_carved_list(path: Path, index: VideoIndex, root: Path) -> Path:
    """The carved validation videos as a CSV list (``path,label[,start_sec,end_sec]``, paths
    relative to ``root``: ``data=csv data.val_list=`` reads it back)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label"])
    for record in index.subsets["val"]:
        shown = _shown(record.path, root)
        window = ([record.start_sec, record.end_sec] if record.start_sec is not None
                  and record.end_sec is not None else [])
        labels = ";".join(str(index.class_names[c]) for c in record.labels())  # multi-label
        writer.writerow([shown, labels, *window])
    return write_text_atomic(path, text.getvalue())
