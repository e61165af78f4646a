"""Checkpoints that are complete or absent: written under a temporary name, then renamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from vidtl.core.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, made atomic: a run killed while saving (SIGKILL,
    preemption) leaves the previous ``last.ckpt`` intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        with atomic_path(Path(path), fsync=True) as partial:
            super().save_checkpoint(checkpoint, partial, storage_options)
