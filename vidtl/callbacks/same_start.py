"""Every process of a run starts from the same point, or the run stops.

With several nodes, each launch decides for itself where to start: ``resume=auto`` looks for
a checkpoint in the run folder as that node sees it. A node that sees another folder (no shared
filesystem, another ``hydra.run.dir``) or no checkpoint would start at step 0 while the others
resume: their epochs, schedules and data would drift apart, or they would wait for each other
for ever. :class:`SameStartOnEveryProcess` compares the step every process starts from and
stops all of them with one line when they differ.
"""

from __future__ import annotations

import lightning as L
import torch

from vidtl.core.errors import UserError


class DifferentStartsError(UserError):
    """The processes of one run would start from different checkpoints."""


class SameStartOnEveryProcess(L.Callback):
    """Stops a multi-process run whose processes start from different steps: ``start_step`` is
    the step of the checkpoint this process resumes (0 for a fresh start). Compared when fit
    starts, before any process validates or trains (a resumed process skips the sanity check
    that a fresh one runs: compared later, they would wait for each other for ever)."""

    def __init__(self, start_step: int) -> None:
        self.start_step = start_step

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size <= 1:
            return
        mine = torch.tensor([self.start_step], device=pl_module.device)
        every = pl_module.all_gather(mine).reshape(-1).tolist()
        if all(step == every[0] for step in every):
            return
        starts = ", ".join(f"process {rank} at step {step}" for rank, step in enumerate(every))
        raise DifferentStartsError(
            f"the processes of this run start from different checkpoints ({starts}): every "
            f"node must see the same run folder (the same hydra.run.dir, on a filesystem they "
            f"share) and so the same checkpoint; with resume=auto a node that finds none starts "
            f"afresh")
