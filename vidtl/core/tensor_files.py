"""Reading tensor files that vidtl did not write (checkpoints, pretrained weights, feature
caches): ``torch.load(weights_only=True)`` of a regular file, refused before any memory is
taken when it would expand past a limit, and refused after loading when its tensors are not
plain CPU tensors that hold their own bytes.

A torch file is a zip archive whose entries torch stores uncompressed; a crafted one can store
them deflate-compressed, so that a small file expands a thousandfold when loaded. The sizes its
entries expand to are read from the archive's directory first (the directory torch's reader
uses: one that its end record places elsewhere, a trick that shows another directory to
Python's ``zipfile``, is refused); past the limit (by default four times the file's size as
listed, at least 64 MiB; ``max_gb`` sets a fixed cap instead) the file is refused. Once loaded, every
tensor must be a dense CPU tensor no larger than the storage it views (a tensor expanded from
one element would take its full size when copied), all of them together within the same limit.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.safe_files import MiB, check_regular, open_regular

MIN_LIMIT = 64 * MiB
SIZE_FACTOR = 4
_END_RECORD = struct.Struct("<4s4H2LH")  # zip's end of central directory record
_LOCATOR = struct.Struct("<4sLQL")  # the ZIP64 end record's locator
_END_RECORD64 = struct.Struct("<4sQ2H2L4Q")  # the ZIP64 end of central directory record


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
    """The bytes ``path``'s entries expand to (a zip-format torch file; a legacy one counts
    its size), refused past :func:`expansion_limit` before anything is unpacked."""
    size = check_regular(path, what)
    limit = expansion_limit(size, max_gb)
    with open_regular(path, what) as file:
        if not zipfile.is_zipfile(file):
            return size
        try:
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                stated = _stated_directory_offset(file, size)
                if stated is not None and stated != archive.start_dir:
                    raise UnreadableTensorFileError(
                        f"{what} {path}: its zip directory is not where its end record says "
                        f"(a crafted archive)")
                expanded = sum(entry.file_size for entry in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, struct.error) as error:
            if isinstance(error, UserError):
                raise
            raise UnreadableTensorFileError(f"{what} {path} is a damaged archive ({error})") \
                from None
    if expanded > limit:
        why = (f"more than max_checkpoint_gb={max_gb}" if max_gb is not None else
               f"more than its limit of {limit / MiB:.0f} MiB (four times its size: torch "
               f"writes checkpoints uncompressed, so only a compressed or crafted file expands "
               f"more); if you trust it, set max_checkpoint_gb")
        raise UnreadableTensorFileError(f"{what} {path} expands to {expanded / MiB:.0f} MiB "
                                        f"when loaded, {why}")
    return expanded


def _stated_directory_offset(file: Any, size: int) -> int | None:
    """The central directory's offset that the archive's end record states (found as torch's
    reader finds it: the last one that fits in the file's final 64 KiB; for a ZIP64 archive,
    the offset its ZIP64 end record states), or ``None`` when there is none."""
    tail = min(size, 65_535 + _END_RECORD.size)
    file.seek(size - tail)
    data = file.read(tail)
    position = data.rfind(b"PK\x05\x06", 0, len(data) - _END_RECORD.size + 4)
    if position < 0:
        return None
    offset = _END_RECORD.unpack(data[position:position + _END_RECORD.size])[6]
    if offset != 0xFFFFFFFF:
        return offset
    start = size - tail + position - _LOCATOR.size  # the ZIP64 locator precedes the record
    file.seek(max(start, 0))
    signature, _, record, _ = _LOCATOR.unpack(file.read(_LOCATOR.size))
    if start < 0 or signature != b"PK\x06\x07":
        return None
    file.seek(record)
    fields = _END_RECORD64.unpack(file.read(_END_RECORD64.size))
    return fields[9] if fields[0] == b"PK\x06\x06" else None


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
