"""The dataset a checkpoint names: read, never written, reached by no connection.

``vidtl-eval`` (by default) and ``vidtl-extract subset=...`` read the dataset a checkpoint was
trained on, from the data config saved in it. That config came with a file someone else may
have written, so :func:`checkpoint_data` holds it to these rules:

- keys given on the command line replace the saved ones (``data.root=...``); one that changes
  the clip geometry (``num_frames``, ``sampler``, ``crop_size``...) is said to differ from
  training, and another dataset's config (``data=<name>``) takes the checkpoint's geometry
  (:func:`with_checkpoint_geometry`);
- how batches are loaded (batch size, worker processes and threads, pinned memory) is the
  command's own (the defaults of ``conf/data/base.yaml`` unless the command line sets them),
  never the checkpoint's;
- nothing is generated: the synthetic dataset's spec is dropped unless the command line names
  ``data.root`` (a folder the user chose);
- a location the checkpoint names (root, lists, frame store, shards, exclusion list) must be a
  local path: a URL (``s3://``, ``http://``) is refused unless the command line gives it;
- messages quote none of the files the checkpoint named (:mod:`vidtl.core.quoting`), unless
  the command line names every location that is read (and the checkpoint's format, sampler,
  decoder and source are registered names, not configs that could name files of their own).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.data import DATA_SETTINGS, data_options
from vidtl.core.errors import UserError
from vidtl.core.settings import CHOICE, GEOMETRY, LOCATION, MACHINE, defaults_of, keys_with
from vidtl.data.annotations.dataset_settings import FormatOptions

log = logging.getLogger(__name__)

# Read from the keys' declarations (vidtl.assembly.data.DATA_SETTINGS, FormatOptions).
LOCATION_KEYS = keys_with(LOCATION, (*DATA_SETTINGS, FormatOptions))
CHOICE_KEYS = keys_with(CHOICE, DATA_SETTINGS)
GEOMETRY_KEYS = keys_with(GEOMETRY, DATA_SETTINGS)
MACHINE_KEYS = keys_with(MACHINE, DATA_SETTINGS)
DECLARED_DEFAULTS = {k: v for cls in (*DATA_SETTINGS, FormatOptions)
                     for k, v in defaults_of(cls).items()}
URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class CheckpointData:
    """The data config to read and whether its files may be quoted in messages."""

    config: DictConfig
    quote_content: bool


def checkpoint_data(saved: Mapping[str, Any], overrides: Mapping[str, Any],
                    origin: str) -> CheckpointData:
    """The saved data config of checkpoint ``origin`` with the command line's ``overrides``
    (its non-null ``data.*`` keys), held to the rules of the module docstring."""
    if overrides.get("synthetic") not in (None, "") and "root" not in overrides:
        raise UserError(f"{origin}: data.synthetic generates a dataset, which vidtl-eval does "
                        f"only in a folder the command line names: give data.root=... with it")
    overrides = {key: _cleared(key, value) for key, value in overrides.items()}
    data = dict(saved)
    defaults = data_options(root="unused")
    for key in MACHINE_KEYS:
        data[key] = defaults[key]
    if "root" not in overrides:
        data["synthetic"] = None  # a checkpoint's data is read, never generated
    data.update(overrides)
    note_geometry(data, saved)
    for key in LOCATION_KEYS:
        values = data.get(key)
        urls = [value for value in (values if isinstance(values, (list, tuple)) else [values])
                if isinstance(value, str) and URL.match(value)]
        if key not in overrides and urls:
            value = urls[0]
            raise UserError(f"{origin}: its data.{key} is a URL ({value.split('://')[0]}://...);"
                            f" vidtl opens no connection a checkpoint names: give "
                            f"data.{key}=... on the command line")
    root = data.get("root")
    if "root" not in overrides and data.get("source") != "stream" and isinstance(root, str) \
            and not os.path.isdir(root):
        raise UserError(f"{origin}: the data.root it was trained on, {root}, is not a folder "
                        f"here; give data.root=... (a checkpoint's dataset is read where it "
                        f"is, never generated)")
    named = [key for key in LOCATION_KEYS if data.get(key) not in (None, "", [])]
    nested = [key for key in CHOICE_KEYS if isinstance(data.get(key), dict)
              and key not in overrides]  # a format of the checkpoint's may name files too
    return CheckpointData(OmegaConf.create(data),
                          all(key in overrides for key in named) and not nested)


def _cleared(key: str, value: Any) -> Any:
    """An empty value on the command line clears the checkpoint's: the key's declared
    default (a list key's empty list)."""
    if value != "":
        return value
    default = DECLARED_DEFAULTS.get(key)
    return list(default) if isinstance(default, tuple) else default


def with_checkpoint_geometry(data: DictConfig, saved: Mapping[str, Any]) -> DictConfig:
    """``data`` (another dataset's config) with the clip geometry of the checkpoint's saved data
    config ``saved`` where ``data`` leaves it null: the model sees clips as it was trained.
    A key set anyway is kept and said to differ."""
    data = OmegaConf.create(OmegaConf.to_container(data))
    for key in GEOMETRY_KEYS:
        if data.get(key) is None:
            data[key] = saved.get(key)
    note_geometry(data, saved)
    return data


def note_geometry(data: Mapping[str, Any], saved: Mapping[str, Any]) -> None:
    """Warn about each clip-geometry key of ``data`` that differs from training's."""
    for key in GEOMETRY_KEYS:
        value, trained = data.get(key), saved.get(key)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        if trained is not None and value != trained:
            log.warning("data.%s=%s differs from the %s the model was trained with: its "
                        "clips are not those it learned from", key, value, trained)
