"""A validation split carved from the training videos (``data.val_from_train``), for datasets
whose official split has none: UCF101, HMDB51, SSv2 (whose validation set is what papers
report as the test), Kinetics without labelled test rows, a folder or CSV lists without one.

Without it, the best-epoch checkpoint, sweeps and searches would choose on the test videos.
With it, ``val`` is a seeded share of each class's training videos, whole groups at a time
(:attr:`VideoRecord.group`: a video's source stays on one side), ``train`` is the rest, and
``test`` is the official test list, or the format's validation set when it has no test list.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidtl.core.atomic import write_text_atomic
from vidtl.core.errors import UserError
from vidtl.data.annotations.records import VideoIndex, VideoRecord

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
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"data.val_split_seed must be an integer, got {self.seed!r}")

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
    chosen = _chosen_groups(train, share, carve.seed)
    if not chosen:
        raise UserError(f"data.val_from_train={carve.amount}: no class has its training videos "
                        f"in two or more groups, so none can give one to validation without "
                        f"leaving training ({len(train)} training videos)")
    official = index.subsets.get("val") or []
    if "test" not in index.subsets and official:
        index.subsets["test"] = official
        log.info("the format's own validation set (%d videos) is the test set now",
                 len(official))
    elif official and [r.path for r in official] != [r.path for r in index.subsets["test"]]:
        log.info("the format's own validation set (%d videos) is left out: validation is "
                 "carved from training and the test list stays the test set", len(official))
    index.subsets["val"] = [r for r in train if _key(r) in chosen]
    index.subsets["train"] = [r for r in train if _key(r) not in chosen]
    index.val_name, index.val_carved = None, True
    log.info("validation carved from training (data.val_from_train=%s, seed %d, whole groups "
             "per class): %d validation and %d training videos", carve.amount, carve.seed,
             len(index.subsets["val"]), len(index.subsets["train"]))


def _key(record: VideoRecord) -> tuple[int, str]:
    return record.label, record.group if record.group is not None else str(record.path)


def _chosen_groups(train: list[VideoRecord], share: float, seed: int) -> set[tuple[int, str]]:
    """Per class, groups in a seeded order until ``share`` of its videos are taken (at least
    one group, never all of them: a class with one group stays in training)."""
    sizes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in train:
        label, group = _key(record)
        sizes[label][group] += 1
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, str]] = set()
    for label in sorted(sizes):
        groups = sorted(sizes[label])
        order = [groups[i] for i in rng.permutation(len(groups))]
        if len(groups) < 2:
            continue
        target = max(1, round(share * sum(sizes[label].values())))
        taken = 0
        for group in order[:-1]:  # the last group stays in training
            if taken >= target:
                break
            chosen.add((label, group))
            taken += sizes[label][group]
    return chosen


def write_carved_list(path: Path, index: VideoIndex, root: Path) -> Path:
    """The carved validation videos as a CSV list (``path,label[,start_sec,end_sec]``, paths
    relative to ``root``: ``data=csv data.val_list=`` reads it back)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label"])
    for record in index.subsets["val"]:
        try:
            shown = str(record.path.relative_to(root))
        except ValueError:
            shown = str(record.path)
        window = ([record.start_sec, record.end_sec] if record.start_sec is not None
                  and record.end_sec is not None else [])
        writer.writerow([shown, index.class_names[record.label], *window])
    return write_text_atomic(path, text.getvalue())
