"""Settings declared once: a dataclass per concern, each field a config key with its default and
the roles it plays.

A field made with :func:`setting` carries its roles in its metadata; the key lists that other
code needs (the keys a checkpoint's data config may not impose, those that name files, those
that leave the cached features unchanged...) are read from the dataclasses with
:func:`keys_with`, never written out by hand. :func:`settings_from` builds a dataclass from a
config mapping, a missing key taking the field's default (the one place it is set).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from vidtl.core.errors import UserError

T = TypeVar("T")

# The roles a setting can play (see where each is used).
LOCATION = "location"  # names a file or folder (a checkpoint may not name a URL here)
CHOICE = "choice"  # a registered name or a config with _target_ (an extension point)
GEOMETRY = "geometry"  # shapes the clips the model sees (said when evaluation differs)
MACHINE = "machine"  # how this machine loads batches: the command's own, never a checkpoint's
LOADER_ONLY = "loader_only"  # changes how clips are loaded, not what they hold
ROLES = frozenset({LOCATION, CHOICE, GEOMETRY, MACHINE, LOADER_ONLY})


def setting(default: Any, *roles: str) -> Any:
    """A dataclass field that is a config key with ``default`` (immutable: a tuple for a
    list), playing ``roles``."""
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown setting roles {sorted(unknown)}; known: {sorted(ROLES)}")
    return dataclasses.field(default=default, metadata={"roles": frozenset(roles)})


def field_names(*classes: type) -> tuple[str, ...]:
    """The config keys the dataclasses ``classes`` declare, in order."""
    return tuple(f.name for cls in classes for f in dataclasses.fields(cls))


def keys_with(role: str, classes: Iterable[type]) -> tuple[str, ...]:
    """The keys of ``classes`` declared with ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown setting role {role!r}")
    return tuple(f.name for cls in classes for f in dataclasses.fields(cls)
                 if role in f.metadata.get("roles", ()))


def defaults_of(cls: type) -> dict[str, Any]:
    """Each key of dataclass ``cls`` with its default (keys without one are left out)."""
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def settings_from(cls: type[T], config: Mapping[str, Any], prefix: str = "data.",
                  **converted: Any) -> T:
    """``cls`` built from the keys of ``config`` that it declares (a missing key takes the
    field's default), each value checked against its field's type where that is ``int``,
    ``float``, ``bool`` or ``str`` (a :class:`UserError` naming ``<prefix><key>`` otherwise);
    ``converted`` gives values already converted from the config's."""
    hints = typing.get_type_hints(cls)
    values = {name: _checked(config[name], hints[name], prefix + name)
              for name in field_names(cls) if name in config and name not in converted}
    return cls(**values, **converted)


def _checked(value: Any, kind: Any, key: str) -> Any:
    """``value`` as the plain ``kind`` its setting declares (other kinds pass unchanged)."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
        value = int(value) if ok else value
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    else:
        return value
    if not ok:
        raise UserError(f"{key} must be {kind.__name__}, got {value!r}")
    return value
