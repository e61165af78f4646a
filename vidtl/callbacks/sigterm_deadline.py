"""SIGTERM ends a run, whatever it is waiting on.

Lightning's SIGTERM handler only sets a flag that its loops read between batches (where
:class:`~vidtl.callbacks.preemption.PreemptionCheckpoint` saves the step). A run blocked
elsewhere (the loader waiting for a worker stuck on a file, a stalled network read) never gets
there: SIGTERM was absorbed, and only SIGKILL ended it. :class:`SigtermDeadline` gives the first
SIGTERM ``grace_s`` seconds to end the run the usual way; past them, or at a second SIGTERM, it
logs why, kills its loader worker processes and exits at once with status 143 (128 + SIGTERM).
Checkpoints are written atomically, so the last one saved stays intact.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from types import FrameType
from typing import Any

import lightning as L

log = logging.getLogger(__name__)
EXIT_STATUS = 128 + signal.SIGTERM


class SigtermDeadline(L.Callback):
    """See the module docstring. Installed around Lightning's own SIGTERM handler at the start
    of every stage (Lightning registers it when a stage starts and restores the previous one
    when it ends)."""

    def __init__(self, grace_s: float = 120.0) -> None:
        try:
            self.grace_s = float(grace_s)
        except (TypeError, ValueError):
            self.grace_s = -1.0
        if not self.grace_s > 0:
            raise ValueError(f"sigterm_grace_s must be a number of seconds > 0, got {grace_s!r}")
        self._timer: threading.Timer | None = None
        self._wrapped: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._timer is not None:
            self._stop_now("a second SIGTERM")
        self._timer = threading.Timer(self.grace_s, self._stop_now,
                                      (f"no step ended within {self.grace_s:g} s of SIGTERM",))
        self._timer.daemon = True
        self._timer.start()
        if callable(self._wrapped):
            self._wrapped(signum, frame)

    def _stop_now(self, why: str) -> None:
        log.error("%s: stopping now (sigterm_grace_s=%g); the checkpoints saved so far are "
                  "intact, and resume=auto continues from the last one", why, self.grace_s)
        for handler in logging.getLogger().handlers:
            handler.flush()
        for child in multiprocessing.active_children():  # loader workers, blocked or not:
            child.kill()  # an exit that skips clean-up would leave them running
        os._exit(EXIT_STATUS)

    def _arm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current != self._handle:  # (a bound method: equal, not identical, each time)
            self._wrapped = current
            signal.signal(signal.SIGTERM, self._handle)

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._arm()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._arm()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._arm()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._arm()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._disarm()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._disarm()  # (a SIGTERM that stopped the loop in time ends here)

    def _disarm(self) -> None:
        if self._timer is not None:  # the stage ended within the grace
            self._timer.cancel()
            self._timer = None
