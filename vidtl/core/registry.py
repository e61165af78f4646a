"""Named registries of extension points (backbones, dataset formats, decoders, frame sources,
samplers): ``@REGISTRY.register("name")`` adds one, a config names it, and an unknown name is
a :class:`UnknownNameError` that lists the known ones."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from vidtl.core.errors import UserError
from vidtl.core.trusted_targets import rebuildable

T = TypeVar("T")


class UnknownNameError(UserError):
    """A config names something that no registry holds."""


class Registry(Generic[T]):
    """``name -> T`` for one kind of extension point; ``config_key`` is the config key that
    chooses among them (named in errors)."""

    def __init__(self, kind: str, config_key: str) -> None:
        self.kind = kind
        self.config_key = config_key
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (replacing any before). A
        registered object may also be named by a checkpoint's ``_target_``, in the part of its
        config that ``config_key`` belongs to (:mod:`vidtl.core.trusted_targets`)."""

        def wrap(entry: T) -> T:
            self._entries[name] = entry
            try:
                rebuildable(self.config_key.split(".")[0])(entry)
            except (AttributeError, TypeError):  # an object that takes no attributes
                pass
            return entry

        return wrap

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UnknownNameError(
                f"{self.config_key}={name!r}: unknown {self.kind}{hint}; known: "
                f"{', '.join(sorted(self._entries))}, or a config with _target_ naming your own")
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
