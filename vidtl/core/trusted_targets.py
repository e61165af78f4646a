"""Which ``_target_`` a config that came with a checkpoint may name, in which subtree.

A checkpoint is a file that someone else may have written. Its saved config is turned back into
a model by Hydra's ``instantiate``, which calls whatever ``_target_`` names (``builtins.open``,
``shutil.copyfile``, ``numpy.save``...); Hydra's own blocklist is, in its words, not a security
boundary. So before a saved config is instantiated, every ``_target_`` in it must be one of:

- in the ``model`` and ``module`` subtrees: a class that is a ``torch.nn.Module`` and is
  defined in ``vidtl``, ``timm``, ``torchvision`` or ``torch.nn`` (building a module allocates
  tensors, which :mod:`vidtl.inference.rebuild_limits` bounds; it reads and writes nothing).
  Model builder functions are not trusted: some download weights by default;
- an object of ``vidtl`` marked :func:`rebuildable` for that subtree: the backbone factory and
  LoRA settings (``model``); the dataset formats, decoders, frame sources, samplers and the
  synthetic dataset's spec (``data``); they read files at most;
- a name under a prefix the user lists in the command's own ``custom_imports`` or
  ``trusted_targets`` (never the checkpoint's): their own package, trusted by saying so.

The object's own module must be under those roots, and the path may reach it through classes
only: a name like ``vidtl.training.module.L.pytorch...`` (lightning, imported by a vidtl module)
is refused. A name outside the roots is refused before anything of it is imported. What else a
stored config must be (plain data, no interpolation, nothing that fetches) is
:mod:`vidtl.core.stored_config`.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from vidtl.core.errors import UserError

MARK = "__vidtl_rebuildable__"
MODULE_ROOTS = ("vidtl", "timm", "torchvision", "torch.nn")
T = TypeVar("T")


class UntrustedTargetError(UserError):
    """A saved config names a ``_target_`` that vidtl will not call."""


SUBTREES = ("model", "data")
ALLOWED = {
    "model": "torch.nn.Module classes defined in vidtl, timm, torchvision and torch.nn, and "
             "vidtl's model factories",
    "data": "vidtl's dataset formats, decoders, frame sources, samplers and synthetic-data spec",
}


def rebuildable(subtree: str) -> Callable[[T], T]:
    """Decorator: the decorated vidtl function or class (which writes nothing) may be named by
    the ``subtree`` part (``model``: model and module; ``data``) of a checkpoint's config."""
    if subtree not in SUBTREES:
        raise ValueError(f"subtree must be one of {SUBTREES}, got {subtree!r}")

    def mark(obj: T) -> T:
        setattr(obj, MARK, subtree)
        return obj

    return mark


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return bool(prefix) and (name == prefix or name.startswith(prefix + "."))


def _locate(name: str) -> Any:
    """The object called ``name`` (a dotted path): its module imported, then attributes of
    classes only. ``None`` when there is none, or when the path reaches the object through
    another module (``vidtl.training.module.L.pytorch...`` is lightning's, not vidtl's)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
            if obj is None or isinstance(obj, types.ModuleType):
                return None
        return obj
    return None


def is_trusted(target: str, trusted_prefixes: Sequence[str] = (), subtree: str = "model"
               ) -> bool:
    """Whether the ``subtree`` part of a saved config may name ``target`` (see the module
    docstring)."""
    if any(_under(target, prefix) for prefix in trusted_prefixes):
        return True
    if not any(_under(target, root) for root in MODULE_ROOTS) or target in MODULE_ROOTS:
        return False
    obj = _locate(target)
    home = getattr(obj, "__module__", None) or ""
    if obj is None or not any(_under(home, root) for root in MODULE_ROOTS):
        return False  # (an object that a trusted module merely imported from elsewhere)
    if _under(home, "vidtl") and getattr(obj, "__dict__", {}).get(MARK) == subtree:
        return True
    if subtree != "model" or not isinstance(obj, type):
        return False
    import torch.nn

    return issubclass(obj, torch.nn.Module)


def targets_in(config: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(key path, target)`` of every ``_target_`` in a plain (resolved) container."""
    if isinstance(config, dict):
        for key, value in config.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from targets_in(value, where)
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            yield from targets_in(value, f"{path}[{index}]")


def check_targets(config: Any, origin: str, trusted_prefixes: Sequence[str] = (),
                  subtree: str = "model", path: str = "") -> None:
    """Raise :class:`UntrustedTargetError` (naming ``origin``, the key and the target) unless
    every ``_target_`` of ``config`` (the ``subtree`` part of a saved config, at ``path``) is
    trusted there."""
    for where, target in targets_in(config, path):
        if not isinstance(target, str) or not is_trusted(target, trusted_prefixes, subtree):
            root = target.rsplit(".", 1)[0] if isinstance(target, str) else "?"
            raise UntrustedTargetError(
                f"{origin}: {where}={target!r} is not a class or function vidtl rebuilds from a "
                f"checkpoint's {subtree} config (allowed: {ALLOWED[subtree]}); if you trust this "
                f"file and that code, add "
                f"custom_imports=[{root}] to the command (it imports {root} and trusts it)")
