"""The ``data.*`` keys that say which videos a run reads: where, in which format, and how its
splits are made (see ``conf/data/base.yaml`` for each key's meaning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidtl.core.settings import CHOICE, LOADER_ONLY, LOCATION, setting


@dataclass(frozen=True)
class DatasetSettings:
    """Where the dataset is and which format reads it (the dataset spec's keys)."""

    root: Any = setting(None, LOCATION)  # required in a config (??? in base.yaml)
    format: Any = setting("ucf101", CHOICE)
    strict: bool = setting(False, LOADER_ONLY)
    allow_outside_root: bool = setting(False)
    synthetic: Any = setting(None)
    exclude_list: str | None = setting(None, LOCATION)
    extra_val_lists: Any = setting((), LOCATION)
    val_from_train: Any = setting(None)
    val_split_seed: int = setting(0)


@dataclass(frozen=True)
class FormatOptions:
    """The options of the built-in formats (a format's own keys, passed to it as options):
    which split, and the files that list its videos."""

    split: Any = setting(None)
    annotation_dir: str | None = setting(None, LOCATION)
    annotations: str | None = setting(None, LOCATION)
    video_dir: str | None = setting(None, LOCATION)
    train_list: Any = setting(None, LOCATION)
    val_list: Any = setting(None, LOCATION)
    test_list: Any = setting(None, LOCATION)
