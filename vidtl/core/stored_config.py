"""The config a checkpoint carries: plain data, checked whole before anything is built from it.

``vidtl-train`` stores the run's config fully resolved: plain dicts, lists and scalars. Loading a
checkpoint holds that config to these rules (:func:`checked_config`) before any object is built,
and the objects are then built from exactly the container it checked:

- **plain data**: dicts with string keys, lists, strings, integers, floats, booleans and nulls;
  no container twice (a pickle can share one, or nest one inside itself), at most
  ``MAX_VALUES`` values, ``MAX_DEPTH`` levels, ``MAX_STRING`` characters a string;
- **no interpolation**: no ``${`` in any string or key of any subtree. OmegaConf would read it
  as an interpolation (``oc.env`` reads the environment, ``oc.create`` builds objects, an
  escaped ``\\${`` becomes a live one when resolved), so no resolver ever runs on checkpoint
  data;
- **nothing fetched**: in the ``model`` and ``module`` subtrees, no key that makes a builder
  fetch or read weights (``url``, ``file``, ``hf_hub_id``, ``checkpoint_path``,
  ``pretrained_cfg_overlay``, ``weights``, ``pretrained``...) holds a value other than
  null/false, and no string names a hub or a URL (``hf-hub:``, ``https://``). The backbone's own
  ``pretrained`` is allowed: a model rebuilt from a checkpoint is built with
  ``pretrained=False`` and takes its weights from the state dict;
- **trusted targets**: every ``_target_`` is trusted for its subtree
  (:mod:`vidtl.core.trusted_targets`).

Each refusal is one :class:`StoredConfigError` naming the file and the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.trusted_targets import check_targets

MAX_VALUES = 100_000
MAX_DEPTH = 32
MAX_STRING = 65_536
MAX_INT = 2**63
# The subtrees vidtl builds objects from, and the trust each gets.
REBUILT_SUBTREES = {"model": "model", "module": "model", "data": "data"}
# Keys with which timm's and torchvision's builders (or a model class) fetch or read weights.
FETCHING_KEYS = frozenset({
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
    "checkpoint_path", "pretrained_path", "url", "file", "hf_hub_id", "hf_hub_filename",
    "hf_hub_revision", "repo_id", "cache_dir", "model_dir", "local_dir", "weights",
    "weights_backbone",
})
# Rebuilt with pretrained=False whatever they say (vidtl.assembly.model.build_classifier).
OVERRIDDEN_KEYS = frozenset({"model.backbone.pretrained"})
REMOTE_NAME = re.compile(r"^\s*(hf[-_]hub:|local-dir:|[A-Za-z][A-Za-z0-9+.-]*://)")


class StoredConfigError(UserError):
    """A checkpoint's config is not plain, interpolation-free data that fetches nothing."""


def plain_config(value: Any, origin: str) -> Any:
    """A fresh copy of ``value`` made of plain containers and scalars only (see the module
    docstring); a :class:`StoredConfigError` naming ``origin`` and the key otherwise."""
    return _Copier(origin).copy(value, "", 0)


class _Copier:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.seen: set[int] = set()
        self.values = 0

    def refuse(self, where: str, why: str) -> StoredConfigError:
        return StoredConfigError(f"{self.origin}: config key {where or '(top)'} {why}; a "
                                 f"checkpoint's config must be plain data (vidtl-train stores "
                                 f"it resolved)")

    def copy(self, value: Any, where: str, depth: int) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.refuse(where, f"is past the {MAX_VALUES}th value")
        if depth > MAX_DEPTH:
            raise self.refuse(where, f"is nested deeper than {MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise self.refuse(where, "holds an integer out of range")
            return int(value)
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, (dict, list)):
            if id(value) in self.seen:
                raise self.refuse(where, "repeats a container (shared or nested in itself)")
            self.seen.add(id(value))
            if isinstance(value, list):
                return [self.copy(item, f"{where}[{i}]", depth + 1)
                        for i, item in enumerate(value)]
            copied = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise self.refuse(where, f"has a key of type {type(key).__name__}")
                inner = f"{where}.{key}" if where else key
                copied[self.string(key, inner)] = self.copy(item, inner, depth + 1)
            return copied
        raise self.refuse(where, f"holds a {type(value).__name__}")

    def string(self, text: str, where: str) -> str:
        if len(text) > MAX_STRING:
            raise self.refuse(where, f"holds a string longer than {MAX_STRING} characters")
        if "${" in text:
            raise self.refuse(where, "holds an interpolation ('${'); no resolver runs on "
                                     "checkpoint data")
        return str(text)


def _values(config: Any, where: str):
    if isinstance(config, dict):
        for key, value in config.items():
            inner = f"{where}.{key}"
            yield inner, key, value
            yield from _values(value, inner)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield f"{where}[{index}]", None, value
            yield from _values(value, f"{where}[{index}]")


def check_fetches_nothing(config: Any, origin: str, where: str) -> None:
    """Refuse, in a ``model`` or ``module`` subtree at ``where``, a fetching key that is set
    and a string that names a hub or a URL."""
    for key_path, key, value in _values(config, where):
        if key in FETCHING_KEYS and value not in (None, False, "") \
                and key_path not in OVERRIDDEN_KEYS:
            raise StoredConfigError(
                f"{origin}: config key {key_path} asks a builder to fetch or read weights; a "
                f"model rebuilt from a checkpoint takes its weights from the state dict, so "
                f"its config may not set {key!r}")
        if isinstance(value, str) and REMOTE_NAME.match(value):
            raise StoredConfigError(
                f"{origin}: config key {key_path} names a hub or URL; a model rebuilt from a "
                f"checkpoint fetches nothing")


def checked_config(config: Any, origin: str, trusted_prefixes: Sequence[str] = ()) -> dict:
    """``config`` (already :func:`plain_config`) held to the fetching and target rules of the
    module docstring, subtree by subtree; returned unchanged."""
    if not isinstance(config, dict):
        raise StoredConfigError(f"{origin}: the saved config is a {type(config).__name__}, "
                                f"not a mapping")
    for subtree, trust in REBUILT_SUBTREES.items():
        part = config.get(subtree)
        if part is None:
            continue
        if trust == "model":
            check_fetches_nothing(part, origin, subtree)
        check_targets(part, origin, trusted_prefixes, subtree=trust, path=subtree)
    return config
