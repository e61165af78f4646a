"""Every process of a run starts from the same checkpoint with the same settings, or the run
stops.

With several nodes, each launch decides for itself where to start and with what: ``resume=auto``
looks for a checkpoint in the run folder as that node sees it, and each node has its own
command line. A node that sees another folder (no shared filesystem, another
``hydra.run.dir``), no checkpoint, or another run's, would start elsewhere than the others, and
one launched with other settings (another ``data.batch_size``) would train with them: their
epochs, schedules and data drift apart without a word, or they wait for each other for ever.
:class:`SameStartOnEveryProcess` compares what every process starts from (the checkpoint's
step and the launch that saved it) and its settings (bookkeeping such as paths and run names
left out, and where each node finds the data), and stops all of them with one line when they
differ.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from vidtl.callbacks.resume_changes import config_changes
from vidtl.core.errors import UserError
from vidtl.core.quoting import quote

# Settings that may differ from node to node: where each node finds the same videos (a copy
# staged on its own disk) and the run folder as each node mounts it.
PER_NODE_KEYS = ("data.root", "data.frames_root", "trainer.default_root_dir")


class DifferentStartsError(UserError):
    """The processes of one run would start from different checkpoints or settings."""


class SameStartOnEveryProcess(L.Callback):
    """Stops a multi-process run whose processes start from different checkpoints (``start``:
    the step of the checkpoint this process resumes and the id of the launch that saved it;
    ``(0, None)`` for a fresh start) or with different ``settings``. Compared when fit starts,
    before any process validates or trains (a resumed process skips the sanity check that a
    fresh one runs: compared later, they would wait for each other for ever)."""

    def __init__(self, start: tuple[int, str | None], settings: dict[str, Any]) -> None:
        self.start = start
        self.settings = settings

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size <= 1 or not torch.distributed.is_initialized():
            return
        every: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(every, (self.start, self.settings))
        starts = [start for start, _ in every]
        if any(start != starts[0] for start in starts):
            listed = ", ".join(f"process {rank} at step {step}" + (
                f" of launch {launch[:8]}" if launch else " (a fresh start)")
                for rank, (step, launch) in enumerate(starts))
            raise DifferentStartsError(
                f"the processes of this run start from different checkpoints ({listed}): every "
                f"node must see the same run folder (the same hydra.run.dir, on a filesystem "
                f"they share) and so the same checkpoint; with resume=auto a node that finds "
                f"none starts afresh")
        for rank, (_, settings) in enumerate(every):
            changes = {key: values for key, values in config_changes(every[0][1], settings).items()
                       if key not in PER_NODE_KEYS}
            if changes:
                key, (first, other) = next(iter(changes.items()))
                raise DifferentStartsError(
                    f"the processes of this run were launched with different settings: "
                    f"{key}={quote(first)} on process 0 and {quote(other)} on process {rank} "
                    f"({len(changes)} settings differ); launch every node with the same "
                    f"command")
