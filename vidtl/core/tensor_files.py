"""Reading tensor files that vidtl did not write (checkpoints, pretrained weights, feature
caches): ``torch.load(weights_only=True)`` of a regular file, refused before any memory is
taken when it would expand past a limit, and refused after loading when its tensors are not
plain CPU tensors that hold their own bytes.

A torch file is a zip archive whose entries torch stores uncompressed; a crafted one can store
them deflate-compressed, so that a small file expands a thousandfold when loaded. The sizes its
entries expand to are read from the archive's directory first, as torch's reader reads them
(an archive that shows Python's ``zipfile`` other sizes is refused:
:mod:`vidtl.core.zip_directory`); past the limit (by default four times the file's size as
listed, at least 64 MiB; ``max_gb`` sets a fixed cap instead) the file is refused. Once
loaded, every tensor must be a dense CPU tensor no larger than the storage it views (a tensor
expanded from one element would take its full size when copied), all of them together within
the same limit.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.safe_files import MiB, check_regular, open_regular
from vidtl.core.zip_directory import ZipDirectoryError, check_same_view, torch_entries

MIN_LIMIT = 64 * MiB
SIZE_FACTOR = 4


class UnreadableTensorFileError(UserError):
    """A tensor file torch cannot read safely (truncated, foreign, pickled code, a zip bomb)."""


def expansion_limit(file_size: int, max_gb: Any = None) -> int:
    """How many bytes a file of ``file_size`` bytes may expand to when loaded."""
    if max_gb is None:
        return max(SIZE_FACTOR * file_size, MIN_LIMIT)
    try:
        limit = float(max_gb)
    except (TypeError, ValueError):
        limit = -1.0
    if not limit > 0:
        raise UserError(f"max_checkpoint_gb must be a number of GiB > 0 (or null), got {max_gb!r}")
    return int(limit * 2**30)


def check_expansion(path: str | Path, what: str = "checkpoint", max_gb: Any = None) -> int:
    """The bytes ``path``'s entries expand to (a zip-format torch file, read as torch reads
    it; a legacy one counts its size), refused past :func:`expansion_limit` before anything is
    unpacked."""
    size = check_regular(path, what)
    limit = expansion_limit(size, max_gb)
    with open_regular(path, what) as file:
        if not zipfile.is_zipfile(file):
            return size
        try:
            entries = torch_entries(file, size)
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                check_same_view(archive, entries)
        except (zipfile.BadZipFile, ZipDirectoryError, OSError, struct.error) as error:
            raise UnreadableTensorFileError(f"{what} {path} is a damaged or crafted archive "
                                            f"({error})") from None
    expanded = sum(entry.uncompressed for entry in entries)
    if expanded > limit:
        why = (f"more than max_checkpoint_gb={max_gb}" if max_gb is not None else
               f"more than its limit of {limit / MiB:.0f} MiB (four times its size: torch "
               f"writes checkpoints uncompressed, so only a compressed or crafted file expands "
               f"more); if you trust it, set max_checkpoint_gb")
        raise UnreadableTensorFileError(f"{what} {path} expands to {expanded / MiB:.0f} MiB "
                                        f"when loaded, {why}")
    return expanded


def check_tensors(loaded: Any, path: str | Path, what: str, limit: int) -> None:
    """Refuse a loaded object holding a tensor that is not a dense CPU tensor within its own
    storage, or tensors whose bytes add up past ``limit``."""
    import torch

    total, stack, seen = 0, [loaded], set()
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor):
            if value.device.type != "cpu" or value.layout != torch.strided:
                raise UnreadableTensorFileError(
                    f"{what} {path} holds a {value.layout} tensor on {value.device}; vidtl reads "
                    f"dense CPU tensors only")
            size = value.numel() * value.element_size()
            if size > value.untyped_storage().nbytes():
                raise UnreadableTensorFileError(
                    f"{what} {path} holds a tensor of {size} bytes over a storage of "
                    f"{value.untyped_storage().nbytes()} (an expanded view)")
            total += size
            if total > limit:
                raise UnreadableTensorFileError(
                    f"{what} {path}: its tensors add up to more than {limit / MiB:.0f} MiB")
        elif isinstance(value, (dict, list, tuple, set)) and id(value) not in seen:
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)


def load_tensor_file(path: str | Path, what: str = "checkpoint", max_gb: Any = None) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, once :func:`check_expansion` passed,
    with its tensors checked by :func:`check_tensors`; a one-line
    :class:`UnreadableTensorFileError` naming the file when torch cannot read it."""
    import torch

    check_expansion(path, what, max_gb)
    try:
        with open_regular(path, what) as file:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as error:  # torch raises many kinds for a damaged or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableTensorFileError(
            f"{path} cannot be read as a {what} with weights_only=True ({first[:200]}); it is "
            f"truncated, not a torch file, or holds pickled objects other than tensors") from None
    check_tensors(loaded, path, what, expansion_limit(check_regular(path, what), max_gb))
    return loaded
