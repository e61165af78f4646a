"""Which ``_target_`` a config that came with a checkpoint may name.

A checkpoint is a file that someone else may have written. Its saved config is turned back into
a model by Hydra's ``instantiate``, which calls whatever ``_target_`` names (``builtins.open``,
``shutil.copyfile``, ``numpy.save``...); Hydra's own blocklist is, in its words, not a security
boundary. So before a saved config is instantiated, every ``_target_`` in it must be one of:

- a class that is a ``torch.nn.Module`` and lives in ``vidtl``, ``timm``, ``torchvision`` or
  ``torch.nn`` (building a module allocates tensors; it writes nothing);
- a model builder of torchvision's or timm's model registry (``torchvision.models.resnet50``);
- an object of ``vidtl`` marked :func:`rebuildable` (its backbone factory, settings classes and
  every entry of its registries: they read files at most);
- a name under a prefix the user lists in the command's own ``custom_imports`` or
  ``trusted_targets`` (never the checkpoint's): their own package, trusted by saying so.

A name outside the first two roots is refused before anything of it is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from vidtl.core.errors import UserError

MARK = "__vidtl_rebuildable__"
MODULE_ROOTS = ("vidtl", "timm", "torchvision", "torch.nn")


class UntrustedTargetError(UserError):
    """A saved config names a ``_target_`` that vidtl will not call."""


def rebuildable(obj: Any) -> Any:
    """Decorator: ``obj`` (a vidtl function or class that writes nothing) may be named by a
    checkpoint's config."""
    setattr(obj, MARK, True)
    return obj


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return bool(prefix) and (name == prefix or name.startswith(prefix + "."))


def _locate(name: str) -> Any:
    """The object called ``name`` (a dotted path), importing its module; ``None`` if none."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def is_trusted(target: str, trusted_prefixes: Sequence[str] = ()) -> bool:
    """Whether a saved config may name ``target`` (see the module docstring)."""
    if any(_under(target, prefix) for prefix in trusted_prefixes):
        return True
    if not any(_under(target, root) for root in MODULE_ROOTS) or target in MODULE_ROOTS:
        return False
    obj = _locate(target)
    if obj is None:
        return False
    if isinstance(obj, type):
        import torch.nn

        return issubclass(obj, torch.nn.Module) or (MARK in vars(obj) and _under(target, "vidtl"))
    if _under(target, "vidtl"):
        return MARK in getattr(obj, "__dict__", {})
    return _is_model_builder(obj)


def _is_model_builder(obj: Any) -> bool:
    """A function of torchvision's or timm's model registry (builds a model, writes nothing
    but a weights download into their cache)."""
    name = getattr(obj, "__name__", "")
    if getattr(obj, "__module__", "").startswith("torchvision.models"):
        import torchvision.models

        try:
            return torchvision.models.get_model_builder(name) is obj
        except ValueError:
            return False
    if getattr(obj, "__module__", "").startswith("timm.models"):
        import timm.models

        return timm.models.is_model(name) and timm.models.model_entrypoint(name) is obj
    return False


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


def check_targets(config: Any, origin: str, trusted_prefixes: Sequence[str] = ()) -> None:
    """Raise :class:`UntrustedTargetError` (naming ``origin``, the key and the target) unless
    every ``_target_`` of ``config`` is trusted."""
    for where, target in targets_in(config):
        if not isinstance(target, str) or not is_trusted(target, trusted_prefixes):
            root = target.rsplit(".", 1)[0] if isinstance(target, str) else "?"
            raise UntrustedTargetError(
                f"{origin}: {where}={target!r} is not a class or function vidtl rebuilds from a "
                f"checkpoint (allowed: torch.nn.Module classes of vidtl, timm, torchvision and "
                f"torch.nn, and vidtl's factories); if you trust this file and that code, add "
                f"custom_imports=[{root}] to the command (it imports {root} and trusts it)")
