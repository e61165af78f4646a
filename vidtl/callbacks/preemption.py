"""Preemption: on SIGTERM or SIGUSR1, a checkpoint at the current step, then a clean exit.

This is how clusters stop a job: SLURM sends SIGUSR1 (``--signal=USR1@90``) or SIGTERM some
seconds before it kills it. Lightning's own handlers stay in charge where they exist: its
SIGTERM handler sets ``trainer.received_sigterm`` (and stops the loop after the step), and on
SLURM with auto-requeue its SIGUSR1 handler saves ``hpc_ckpt_<n>.ckpt`` and requeues the job.
This callback adds what they leave out: outside SLURM it takes SIGUSR1 too, and at the end of
the training step in which either signal arrived it writes ``checkpoints/last.ckpt`` (the
same state as a periodic checkpoint: the loader's position included) and stops the run with
Lightning's ``SIGTERMException``. When SIGTERM arrives later in a step (while another callback
runs, in validation or at the epoch's end), Lightning stops the loop by itself, and the
checkpoint is written as it does (``on_exception``). ``resume=auto`` then continues at the next
step.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class PreemptionCheckpoint(L.Callback):
    """Save ``checkpoint_path`` at the end of the step in which SIGTERM or SIGUSR1 arrived,
    then stop training (the process exits with status 0). Under DDP every rank must receive
    the signal (SLURM signals every task)."""

    def __init__(self, checkpoint_path: str | Path) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.signal_name: str | None = None
        self._saved = False
        self._previous: Any = None

    def _on_sigusr1(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = "SIGUSR1"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # (after Lightning registered its handlers, which it restores when fit ends)
        self.signal_name, self._saved = None, False
        current = signal.getsignal(signal.SIGUSR1)
        if threading.current_thread() is threading.main_thread() and current in (
                signal.SIG_DFL, None):  # Lightning's SLURM handler, if any, stays
            self._previous = signal.signal(signal.SIGUSR1, self._on_sigusr1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._restore()
        if isinstance(exception, SIGTERMException) and not self._saved:
            # Lightning stops by itself when SIGTERM arrives after this callback's batch end
            # (during another callback, validation or the epoch's end): save that step too.
            self.signal_name = self.signal_name or "SIGTERM"
            self._save(trainer)

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.received_sigterm and self.signal_name is None:
            self.signal_name = "SIGTERM"
        if self.signal_name is None:
            return
        self._save(trainer)
        raise SIGTERMException()  # a SystemExit with status 0, as Lightning's own

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.checkpoint_path)
        self._saved = True
        log.warning(f"{self.signal_name} received: checkpoint of step {trainer.global_step} "
                    f"saved to {self.checkpoint_path}; run the same command with resume=auto "
                    f"to continue")
