"""Training throughput in clips per second, data loading included, validation excluded."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class TrainThroughput(L.Callback):
    """Counts training clips and the wall time spent on them (waiting for data included)."""

    def __init__(self) -> None:
        self.clips = 0
        self.seconds = 0.0
        self._last: float | None = None

    def _resume_clock(self, *args: Any) -> None:
        self._last = time.perf_counter()

    on_train_epoch_start = _resume_clock
    on_validation_end = _resume_clock

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.seconds += now - self._last
        self._last = now
        self.clips += len(batch[1]) * trainer.world_size

    @property
    def clips_per_s(self) -> float | None:
        return self.clips / self.seconds if self.seconds > 0 else None
