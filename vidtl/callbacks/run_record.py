"""Store what is needed to rebuild and evaluate a model in each of its checkpoints."""

from __future__ import annotations

import math
import uuid
from typing import Any

import lightning as L

from vidtl.core.stored_config import plain_config
from vidtl.core.version import __version__


class RunRecord(L.Callback):
    """Adds ``checkpoint["vidtl"]``: the resolved run config (plain containers, with its
    ``custom_imports``), the class names, the LightningModule's class and the vidtl version, so
    a checkpoint alone can be evaluated; also ``launch_id`` (one per launch: which run saved
    it) and ``epoch_batches`` (the batches of a whole training epoch of that run, as limited
    by ``trainer.limit_train_batches``) and ``class_weights`` (the loss's, or ``None``: the
    evaluation commands compute ``test/loss`` with them) and ``carved_validation`` (a digest
    of the validation videos carved from training, or ``None``: ``vidtl-eval`` warns when it
    carves another set). The config is checked to be what
    loading accepts (:func:`~vidtl.core.stored_config.plain_config`: plain data, no ``${``)
    when the run starts, not when the checkpoint is first loaded."""

    def __init__(self, config: dict[str, Any], carved_validation: str | None = None) -> None:
        self.config = plain_config(config, "the run's config")
        self.launch_id = uuid.uuid4().hex
        self.carved_validation = carved_validation

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint["vidtl"] = {
            "config": self.config,
            "class_names": list(pl_module.class_names),
            "module_class": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
            "version": __version__,
            "launch_id": self.launch_id,
            "epoch_batches": (int(trainer.num_training_batches)
                              if math.isfinite(trainer.num_training_batches) else None),
            "class_weights": _class_weights(pl_module),
            "carved_validation": self.carved_validation,
        }


def _class_weights(module: L.LightningModule) -> list[float] | None:
    weights = getattr(module, "class_weights", None)
    return [float(w) for w in weights.tolist()] if weights is not None else None
