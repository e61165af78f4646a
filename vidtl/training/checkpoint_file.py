"""A checkpoint file read safely: its dictionary, or one error line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.tensor_files import load_tensor_file


class CheckpointMismatchError(UserError):
    """The checkpoint cannot be used for what was asked (not vidtl's, other classes...)."""


def read_checkpoint(path: Path, max_gb: float | None = None) -> dict[str, Any]:
    """The checkpoint dictionary of ``path``, read safely (:mod:`vidtl.core.tensor_files`)
    with a one-line error naming the file."""
    checkpoint = load_tensor_file(path, "checkpoint", max_gb)
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f"{path} holds a {type(checkpoint).__name__}, not a "
                                      f"checkpoint dictionary")
    return checkpoint
