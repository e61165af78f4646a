"""Reading tensor files that vidtl did not write (checkpoints, pretrained weights, feature
caches): ``torch.load(weights_only=True)`` of a regular file, refused before any memory is
taken when its entries would expand past a limit.

A torch file is a zip archive whose entries torch stores uncompressed; a crafted one can store
them deflate-compressed, so that a small file expands a thousandfold when loaded. The sizes its
entries expand to are read from the archive's directory first; past the limit (by default four
times the file's size, at least 64 MiB; ``max_gb`` sets a fixed cap instead) the file is
refused. ``weights_only=True`` unpickles tensors and plain containers only, never code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.safe_files import MiB, check_regular, open_regular

MIN_LIMIT = 64 * MiB
SIZE_FACTOR = 4


class UnreadableTensorFileError(UserError):
    """A tensor file torch cannot read safely (truncated, foreign, pickled code, a zip bomb)."""


def expansion_limit(file_size: int, max_gb: float | None = None) -> int:
    """How many bytes a file of ``file_size`` bytes may expand to when loaded."""
    if max_gb is not None:
        return int(float(max_gb) * 2**30)
    return max(SIZE_FACTOR * file_size, MIN_LIMIT)


def check_expansion(path: str | Path, what: str = "checkpoint",
                    max_gb: float | None = None) -> int:
    """The bytes ``path``'s entries expand to (a zip-format torch file; a legacy one counts
    its size), refused past :func:`expansion_limit` before anything is unpacked."""
    size = check_regular(path, what)
    with open_regular(path, what) as file:
        if not zipfile.is_zipfile(file):
            return size
        file.seek(0)
        try:
            with zipfile.ZipFile(file) as archive:
                expanded = sum(entry.file_size for entry in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise UnreadableTensorFileError(f"{what} {path} is a damaged archive ({error})") \
                from None
    limit = expansion_limit(size, max_gb)
    if expanded > limit:
        raise UnreadableTensorFileError(
            f"{what} {path} expands to {expanded / MiB:.0f} MiB when loaded, more than its "
            f"limit of {limit / MiB:.0f} MiB (a compressed or crafted file; torch writes "
            f"checkpoints uncompressed); if you trust it, set max_checkpoint_gb higher")
    return expanded


def load_tensor_file(path: str | Path, what: str = "checkpoint",
                     max_gb: float | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, once :func:`check_expansion` passed;
    a one-line :class:`UnreadableTensorFileError` naming the file when torch cannot."""
    import torch

    check_expansion(path, what, max_gb)
    try:
        with open_regular(path, what) as file:
            return torch.load(file, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as error:  # torch raises many kinds for a damaged or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableTensorFileError(
            f"{path} cannot be read as a {what} with weights_only=True ({first[:200]}); it is "
            f"truncated, not a torch file, or holds pickled objects other than tensors") from None
