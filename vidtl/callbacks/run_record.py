"""Store what is needed to rebuild and evaluate a model in each of its checkpoints."""

from __future__ import annotations

from typing import Any

import lightning as L

import vidtl


class RunRecord(L.Callback):
    """Adds ``checkpoint["vidtl"]``: the resolved run config (plain containers), the class
    names and the vidtl version, so a checkpoint alone can be evaluated."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint["vidtl"] = {
            "config": self.config,
            "class_names": list(pl_module.class_names),
            "version": vidtl.__version__,
        }
