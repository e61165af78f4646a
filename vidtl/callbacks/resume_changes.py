"""Resuming with other settings: what changed is said, and what would silently not apply either
applies or stops the run.

A run resumed from a checkpoint (``ckpt_path=``, ``resume=auto``) gets its optimizer's and its
learning-rate schedule's state back from the checkpoint, hyper-parameters included: a new
``optimizer.lr=0.1`` would be logged while the optimizer kept the old rate. So before fitting,
:func:`config_changes` lists every setting that differs from the checkpoint's saved config, and
:func:`check_resume_changes` logs them; a change to the optimizer or the schedule
(``optimizer.*``, ``scheduler.*``, ``lr_reference_batch``) is refused with one line unless
``resume_changes=apply``. Then :class:`ApplyNewOptimizer` builds the optimizer and the schedule
from the new settings once the checkpoint is restored: the moments of each parameter (Adam's
averages, SGD's momentum) carry over, the schedule continues at the restored step, and the
learning rate logged is the one used. Other settings (``trainer.max_epochs``, the loss options,
the data) take effect by themselves and are only listed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.utilities.types import LRSchedulerConfig

from vidtl.core.errors import UserError

log = logging.getLogger(__name__)
RESTORED_KEYS = ("optimizer", "scheduler", "lr_reference_batch")  # state comes back from the file
IGNORED_KEYS = ("paths", "run_name", "resume", "ckpt_path", "resume_changes", "max_checkpoint_gb",
                "sigterm_grace_s", "logger", "callbacks", "tags", "task_name")
MODES = ("refuse", "apply")



def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, Mapping):
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: config}


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN counting as equal to NaN."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def config_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple]:
    """``{dotted key: (checkpoint's value, this run's value)}`` of every setting that differs,
    run bookkeeping (paths, names, loggers) left out."""
    before, after = _flat(saved), _flat(current)
    return {key: (before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
            if not _same(before.get(key), after.get(key))
            and not any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)}


def carved_split(config: Any) -> tuple[Any, Any] | None:
    """``(data.val_from_train, data.val_split_seed)`` of a run config when it carves a
    validation set (a missing seed is the default 0), else ``None``."""
    data = config.get("data") if isinstance(config, Mapping) else None
    amount = data.get("val_from_train") if isinstance(data, Mapping) else None
    if amount is None or amount == "":
        return None
    seed = data.get("val_split_seed")
    return amount, 0 if seed is None or seed == "" else seed


def check_same_split(saved: Mapping[str, Any], current: Mapping[str, Any], origin: str) -> None:
    """A resume must validate on the split the run started with: another carved validation
    set would hold videos it has trained on. Refused with one line, whatever
    ``resume_changes`` says."""
    before, after = carved_split(saved), carved_split(current)
    if before != after:
        def shown(split: tuple[Any, Any] | None) -> str:
            return ("data.val_from_train=null" if split is None else
                    f"data.val_from_train={split[0]}, data.val_split_seed={split[1]}")
        raise UserError(f"resuming from {origin} ({shown(before)}) with another validation "
                        f"split ({shown(after)}) would validate on videos the run has trained "
                        f"on; keep the checkpoint's values, or start a new run")


def check_resume_changes(changes: Mapping[str, tuple], mode: str, origin: str) -> bool:
    """Log ``changes`` against checkpoint ``origin``; return whether the optimizer and schedule
    must be built anew (``mode`` ``apply`` and one of them changed). ``refuse`` stops with one
    line when one of them changed."""
    if mode not in MODES:
        raise UserError(f"resume_changes must be one of {MODES}, got {mode!r}")
    for key, (old, new) in changes.items():
        log.warning("resumed from %s, which was trained with %s=%s; this run has %s", origin,
                    key, old, new)
    restored = [key for key in changes
                if any(key == k or key.startswith(k + ".") for k in RESTORED_KEYS)]
    if restored and mode == "refuse":
        shown = ", ".join(f"{key}={changes[key][1]} (was {changes[key][0]})" for key in restored)
        raise UserError(f"resuming from {origin} restores its optimizer and schedule, so {shown} "
                        f"would not take effect; add resume_changes=apply to use them (each "
                        f"parameter's moments carry over), or drop the change")
    return bool(restored)


class ApplyNewOptimizer(L.Callback):
    """Once the checkpoint is restored, the optimizer and schedule built from this run's
    settings, with the restored per-parameter state and at the restored step (see the module
    docstring)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        restored = trainer.optimizers[0]
        built = pl_module.configure_optimizers()
        optimizer = built["optimizer"] if isinstance(built, dict) else built
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                if parameter in restored.state:
                    optimizer.state[parameter] = restored.state[parameter]
        configs = []
        if isinstance(built, dict) and built.get("lr_scheduler"):
            schedule = built["lr_scheduler"]
            scheduler = schedule["scheduler"]
            _continue_at(scheduler, optimizer, trainer.global_step)
            configs = [LRSchedulerConfig(scheduler, interval=schedule.get("interval", "step"))]
        trainer.strategy.optimizers = [optimizer]
        trainer.strategy.lr_scheduler_configs = configs
        log.info("resumed with the new optimizer and schedule settings: learning rates %s",
                 [round(group["lr"], 8) for group in optimizer.param_groups])


def _continue_at(scheduler: Any, optimizer: Any, step: int) -> None:
    """Bring a fresh ``scheduler`` to ``step``: vidtl's schedules (``LambdaLR``) directly,
    others by stepping them."""
    if hasattr(scheduler, "lr_lambdas"):
        scheduler.last_epoch = step
        for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs,
                                       scheduler.lr_lambdas, strict=True):
            group["lr"] = base * factor(step)
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
        return
    with warnings.catch_warnings():  # (stepped before the optimizer, on purpose)
        warnings.simplefilter("ignore")
        for _ in range(step):
            scheduler.step()
