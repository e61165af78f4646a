"""What rebuilding a model from a checkpoint may do: take about the memory its weights take,
and touch no file and no network.

The classes a checkpoint's config may name are trusted (:mod:`vidtl.core.trusted_targets`), but
their arguments come from the file: ``torch.nn.Linear(10**6, 10**6)`` would ask for 4 TB, a
timm ViT of depth ``10**7`` for millions of modules, torchvision's ``AnchorGenerator`` for a
tensor the product of two lists long, and code the user trusts may download or read weights.
So :func:`build_within_limits` builds the model twice:

- first on PyTorch's ``meta`` device, where tensors have sizes but no memory, counting every
  tensor storage any operation creates (parameters, buffers, plain attributes, temporaries)
  and every submodule registered: past ``max_bytes`` or ``max_modules`` it stops with a
  :class:`RebuildLimitError`, having used no memory;
- then for real, counting parameters, buffers and modules as they are registered (stopped
  before the weights are initialised, so refused memory is never touched). A model whose
  classes cannot be built on the meta device (code of your own) is counted during this build
  instead, operation by operation;
- in both, sockets cannot connect and names cannot be resolved, and no file can be opened and
  no folder made (through Python's ``open``, ``io.open``, ``os.open``, ``os.mkdir``) but by a
  module being imported and to read the installed packages' own files: a class that tries to
  fetch or read anything (a cache of downloaded weights, a FIFO) stops with a
  :class:`RebuildLimitError` naming what it tried, before a byte moves.

The limits follow from the checkpoint (:func:`limits_for`): a model may hold twice the bytes of
the checkpoint's tensors plus 256 MiB (buffers that are not saved, tied weights), and ten
modules per saved tensor plus 10,000, at most 100,000.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import site
import socket
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from types import FrameType
from typing import Any, TypeVar

import torch
from torch.nn.modules import module as module_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from vidtl.core.errors import UserError, wrapped_user_error
from vidtl.core.safe_files import inside

log = logging.getLogger(__name__)
T = TypeVar("T")

MiB = 2**20
SPARE_BYTES = 256 * MiB
SPARE_MODULES = 10_000
MAX_MODULES = 100_000  # whatever the checkpoint's key count (a ViT-g has about 1,000)


class RebuildLimitError(UserError):
    """Rebuilding a checkpoint's model asked for more than its weights justify, or for a file
    or the network."""


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
    return (2 * storage_bytes(state_dict) + SPARE_BYTES,
            min(10 * len(state_dict) + SPARE_MODULES, MAX_MODULES))


def build_within_limits(build: Callable[[], T], origin: str,
                        state_dict: Mapping[str, Any]) -> T:
    """``build()``, for the model of checkpoint ``origin`` whose weights are ``state_dict``,
    within the limits of the module docstring."""
    max_bytes, max_modules = limits_for(state_dict)
    caller = sys._getframe()  # alive while the model is built (see _exemptions)
    counted_on_meta = True
    try:
        with rebuild_limits(origin, max_bytes, max_modules, caller), torch.device("meta"), \
                StorageCounter(origin, max_bytes):
            build()
    except Exception as error:
        refusal = wrapped_user_error(error)
        if refusal is not None:
            raise refusal.with_traceback(None) from None
        # a class that needs real tensors while it is built: counted in the real build
        log.info("%s: its model cannot be built on the meta device (%s: %s); it is counted "
                 "while it is built", origin, type(error).__name__, str(error)[:120])
        counted_on_meta = False
    counter = nullcontext() if counted_on_meta else StorageCounter(origin, max_bytes)
    with rebuild_limits(origin, max_bytes, max_modules, caller), counter:
        return build()


class StorageCounter(TorchDispatchMode):
    """Counts the bytes of every tensor storage that an operation creates (each storage once)
    and stops with a :class:`RebuildLimitError` past ``max_bytes``: before an operation runs,
    its outputs' sizes are worked out on the meta device, so the operation that would pass the
    limit never runs (an operation whose output size depends on data is counted after it)."""

    def __init__(self, origin: str, max_bytes: int) -> None:
        super().__init__()
        self.origin, self.max_bytes = origin, max_bytes
        self.seen: set[int] = set()
        self.bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if not func.is_view and not _writes_in_place(func):
            self._check(self.bytes + _output_bytes(func, args, kwargs), func)
        out = func(*args, **kwargs)
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                storage = value.untyped_storage()
                if storage._cdata not in self.seen:
                    self.seen.add(storage._cdata)
                    self.bytes += storage.nbytes()
        self._check(self.bytes, func)
        return out

    def _check(self, total: int, func: Any) -> None:
        if total > self.max_bytes:
            raise RebuildLimitError(
                f"{self.origin}: its config builds a model that makes more than "
                f"{self.max_bytes / MiB:.0f} MiB of tensors ({func}), more than its weights "
                f"hold; refused before the memory was used")


def _writes_in_place(func: Any) -> bool:
    """Whether ``func`` returns (a view of) one of its inputs rather than new storage."""
    return any(r.alias_info is not None for r in func._schema.returns)


def _output_bytes(func: Any, args: Any, kwargs: Any) -> int:
    """The bytes of ``func``'s outputs, worked out on the meta device (0 when they depend on
    the data, as ``nonzero``'s do)."""
    def to_meta(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to("meta")
        return torch.device("meta") if isinstance(value, torch.device) else value

    try:
        out = func(*tree_map(to_meta, args), **tree_map(to_meta, kwargs))
    except Exception:  # data-dependent, or not implemented for meta tensors
        return 0
    return sum(v.numel() * v.element_size() for v in tree_flatten(out)[0]
               if isinstance(v, torch.Tensor))


@contextmanager
def rebuild_limits(origin: str, max_bytes: int, max_modules: int,
                   caller: FrameType | None = None) -> Iterator[None]:
    """Build a model of checkpoint ``origin`` inside this block (see the module docstring);
    ``caller`` is a frame that stays alive during the block (by default the one entering)."""
    caller = caller or sys._getframe(2)
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
        with no_files_or_network(origin, caller):
            yield
    finally:
        for handle in handles:
            handle.remove()


def _exemptions(caller: FrameType) -> tuple[Callable[..., bool], Callable[..., bool]]:
    """``(importing, library_file)``: whether the build is importing a module just now (an
    import in ``caller`` or the frames that called it does not count: they stay alive while the
    model is built), and whether a call opens a file of Python's own library folders for
    reading, or imports."""
    paths = sysconfig.get_paths()
    folders = {*(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
               *site.getsitepackages(), site.getusersitepackages()}
    libraries = [os.path.realpath(p) for p in folders if p and os.path.isdir(p)]

    outer = set()  # the frames that called the build: an import there does not count
    frame: Any = caller
    while frame is not None:
        outer.add(id(frame))
        frame = frame.f_back

    def importing(*args: Any, **kwargs: Any) -> bool:
        """Whether the model's build is importing a module just now."""
        frame = sys._getframe(1)
        while frame is not None and id(frame) not in outer:
            if frame.f_code.co_filename.startswith("<frozen importlib"):
                return True
            frame = frame.f_back
        return False

    def library_file(file: Any = None, mode: Any = "r", *args: Any, **kwargs: Any) -> bool:
        reading = isinstance(mode, str) and not any(c in mode for c in "wax+")
        return importing() or (reading and isinstance(file, (str, os.PathLike)) and any(
            inside(os.path.realpath(file), library) for library in libraries))

    return importing, library_file


@contextmanager
def no_files_or_network(origin: str, caller: FrameType | None = None) -> Iterator[None]:
    """Inside the block, a socket that connects or a name lookup (which a DNS query would
    carry out of the machine), making a folder, and opening a file raise
    :class:`RebuildLimitError`: building a model from a config needs none of them. A module
    that is imported while the model is built (an import inside a function) runs its own
    module code as usual (what an import does is the installed package's, not the
    checkpoint's), and files in Python's own library folders (the standard library and the
    site-packages: package metadata, which some classes read as they are built) may be
    read."""
    importing, library_file = _exemptions(caller or sys._getframe(2))

    def guard(owner: Any, name: str, what: str,
              allowed: Callable[..., bool] | None = None) -> Callable[..., Any]:
        original = getattr(owner, name)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if allowed is not None and allowed(*args, **kwargs):
                return original(*args, **kwargs)
            raise RebuildLimitError(f"{origin}: rebuilding its model tried to {what}; a model "
                                    f"rebuilt from a checkpoint fetches, reads and writes "
                                    f"nothing (its weights come from the state dict)")
        return guarded

    network = "reach the network"  # (where: never said; it can come from the environment)
    places = [(socket.socket, "connect", network, None),
              (socket.socket, "connect_ex", network, None),
              (socket, "getaddrinfo", network, None), (socket, "gethostbyname", network, None),
              (socket, "gethostbyname_ex", network, None),
              (socket, "create_connection", network, None),
              (builtins, "open", "open a file", library_file),
              (io, "open", "open a file", library_file),
              (os, "open", "open a file", importing), (os, "mkdir", "make a folder", importing)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _, _ in places]
    try:
        for owner, name, what, allowed in places:
            setattr(owner, name, guard(owner, name, what, allowed))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
