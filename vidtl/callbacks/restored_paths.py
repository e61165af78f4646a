"""A checkpoint resumed from names no file outside this run's checkpoint folders.

``vidtl-train ckpt_path=...`` (and ``resume=auto``) lets Lightning restore the callbacks' state
from the checkpoint, and a ``ModelCheckpoint`` state names files: the best and last checkpoints
(which the run later deletes when it saves better ones, or evaluates at its end) and the
top-k set. A crafted checkpoint could name any file there (``checkpoints/../../../home/...``
passes Lightning's own check, which does not resolve ``..``). Before Lightning restores them,
:class:`RestoredPaths` keeps only the paths that lie inside the folder of one of this run's
``ModelCheckpoint`` callbacks, and drops the others with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from vidtl.core.safe_files import inside

log = logging.getLogger(__name__)
PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RestoredPaths(L.Callback):
    """See the module docstring."""

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        folders = [str(c.dirpath) for c in trainer.checkpoint_callbacks
                   if isinstance(c, ModelCheckpoint) and c.dirpath is not None]
        states = checkpoint.get("callbacks")
        if not isinstance(states, dict):
            return
        for name, state in states.items():
            if isinstance(state, dict) and "best_model_path" in state:
                self._keep_inside(name, state, folders)

    @staticmethod
    def _keep_inside(name: str, state: dict[str, Any], folders: list[str]) -> None:
        def allowed(path: Any) -> bool:
            return isinstance(path, str) and any(inside(path, folder) for folder in folders)

        dropped = [state[key] for key in PATH_KEYS if state.get(key) and not allowed(state[key])]
        for key in PATH_KEYS:
            if state.get(key) and not allowed(state[key]):
                state[key] = ""
        top_k = state.get("best_k_models")
        if isinstance(top_k, dict):
            dropped += [path for path in top_k if not allowed(path)]
            state["best_k_models"] = {p: v for p, v in top_k.items() if allowed(p)}
        elif top_k is not None:
            state["best_k_models"] = {}
        if dropped:
            log.warning("the checkpoint resumed from names %d files outside this run's "
                        "checkpoint folders in the state of %s; they are ignored (never "
                        "deleted or evaluated)", len(dropped), name.split("{")[0])
