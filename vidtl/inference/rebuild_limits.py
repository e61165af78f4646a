"""What rebuilding a model from a checkpoint may do: take about the memory its weights take,
and open no connection.

The classes a checkpoint's config may name are trusted (:mod:`vidtl.core.trusted_targets`), but
their arguments come from the file: ``torch.nn.Linear(10**6, 10**6)`` would ask for 4 TB, a
timm ViT of depth ``10**7`` for millions of modules, and a model builder may download weights
(torchvision's detection builders fetch their backbone's by default). So the model is built
inside :func:`rebuild_limits`:

- every parameter, buffer and submodule registered while it is built is counted (torch's
  global registration hooks), and the build stops with a :class:`RebuildLimitError` as soon as
  the parameters and buffers pass ``max_bytes`` or the modules pass ``max_modules``: before
  the weights are initialised, so the memory refused was never touched;
- sockets cannot connect and names cannot be resolved: a builder that tries to fetch anything
  stops with a :class:`RebuildLimitError` naming the host, before a byte leaves.

The limits follow from the checkpoint (:func:`limits_for`): a model may hold twice the bytes of
the checkpoint's tensors plus 512 MiB (buffers that are not saved, tied weights), and ten
modules per saved tensor plus 10,000.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn.modules import module as module_hooks

from vidtl.core.errors import UserError

MiB = 2**20
SPARE_BYTES = 512 * MiB
SPARE_MODULES = 10_000


class RebuildLimitError(UserError):
    """Rebuilding a checkpoint's model asked for more than its weights justify, or for the
    network."""


def storage_bytes(state_dict: Mapping[str, Any]) -> int:
    """The bytes the tensors of ``state_dict`` hold (shared storage counted once)."""
    storages: dict[tuple[int, str], int] = {}
    for value in state_dict.values():
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[(storage.data_ptr(), str(value.device))] = storage.nbytes()
    return sum(storages.values())


def limits_for(state_dict: Mapping[str, Any]) -> tuple[int, int]:
    """``(max_bytes, max_modules)`` for rebuilding the model of ``state_dict``."""
    return 2 * storage_bytes(state_dict) + SPARE_BYTES, 10 * len(state_dict) + SPARE_MODULES


@contextmanager
def rebuild_limits(origin: str, max_bytes: int, max_modules: int) -> Iterator[None]:
    """Build a model of checkpoint ``origin`` inside this block (see the module docstring)."""
    counted = {"bytes": 0, "modules": 0}

    def count_tensor(module: Any, name: str, tensor: Any) -> None:
        if isinstance(tensor, torch.Tensor):
            counted["bytes"] += tensor.numel() * tensor.element_size()
            if counted["bytes"] > max_bytes:
                raise RebuildLimitError(
                    f"{origin}: its config builds a model of more than {max_bytes / MiB:.0f} "
                    f"MiB of parameters and buffers (at {type(module).__name__}.{name}), more "
                    f"than its weights hold; refused before the memory was used")

    def count_module(module: Any, name: str, submodule: Any) -> None:
        counted["modules"] += 1
        if counted["modules"] > max_modules:
            raise RebuildLimitError(
                f"{origin}: its config builds a model of more than {max_modules} modules, far "
                f"more than its {max_modules // 10} or so saved tensors need; refused")

    handles = [module_hooks.register_module_parameter_registration_hook(count_tensor),
               module_hooks.register_module_buffer_registration_hook(count_tensor),
               module_hooks.register_module_module_registration_hook(count_module)]
    try:
        with no_connections(origin):
            yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def no_connections(origin: str) -> Iterator[None]:
    """Inside the block, a socket that connects or a name lookup (which a DNS query would
    carry out of the machine) raises :class:`RebuildLimitError`."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        target = next((a for a in args if not isinstance(a, socket.socket)), "?")
        raise RebuildLimitError(f"{origin}: rebuilding its model tried to reach {target!r}; a "
                                f"model rebuilt from a checkpoint fetches nothing (its weights "
                                f"come from the state dict)")

    patched = {(socket.socket, "connect"), (socket.socket, "connect_ex"),
               (socket, "getaddrinfo"), (socket, "gethostbyname"), (socket, "gethostbyname_ex"),
               (socket, "create_connection")}
    saved = {(owner, name): getattr(owner, name) for owner, name in patched}
    try:
        for owner, name in patched:
            setattr(owner, name, refuse)
        yield
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)
