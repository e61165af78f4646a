"""What the entry points share beyond the model and data: loggers, callbacks, the metrics file."""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from vidtl.core.atomic import write_text_atomic

log = logging.getLogger(__name__)

# Callbacks that need a logger: left out of a run without one (logger=none).
NEED_A_LOGGER: tuple[type[L.Callback], ...] = (LearningRateMonitor,)


def resolved_container(cfg: DictConfig) -> dict[str, Any]:
    """The config resolved into plain containers (safe to store in a checkpoint)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def logged_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as the loggers record it, saying what the run really is: ``run_name`` is the
    run folder's name (in a sweep, the job's, not the sweep's time), and each W&B logger's
    ``name``, ``group`` and ``tags`` are those its W&B run has."""
    from lightning.pytorch.loggers import WandbLogger

    config = resolved_container(cfg)
    config["run_name"] = Path(cfg.paths.output_dir).name
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if isinstance(logger_cfg, DictConfig) and "_target_" in logger_cfg and issubclass(
                get_class(logger_cfg._target_), WandbLogger):
            options = wandb_options(cfg, logger_cfg)
            entry = config["logger"][name]
            entry.update({key: options[key] for key in ("name", "group", "tags")
                          if key in options})
    return config


def build_loggers(cfg: DictConfig, resume_step: int | None = None
                  ) -> list[L.pytorch.loggers.Logger]:
    """Loggers of ``cfg.logger``; W&B runs offline unless ``WANDB_MODE`` says otherwise. A run
    resumed at ``resume_step`` keeps the curves logged before it (CSV, TensorBoard)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from vidtl.callbacks.csv_history import ResumableCSVLogger

    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if not isinstance(logger_cfg, DictConfig) or "_target_" not in logger_cfg:
            continue
        options: dict[str, Any] = {}
        kind = get_class(logger_cfg._target_)
        if issubclass(kind, WandbLogger):
            os.environ.setdefault("WANDB_MODE", "offline")
            options = wandb_options(cfg, logger_cfg)
        elif issubclass(kind, ResumableCSVLogger):
            options["resume_step"] = resume_step
        elif issubclass(kind, TensorBoardLogger) and resume_step is not None:
            options["purge_step"] = resume_step  # events of steps from it on are superseded
        log.info("logger %s: %s", name, logger_cfg._target_)
        loggers.append(instantiate(logger_cfg, **options))
    return loggers


def wandb_options(cfg: DictConfig, logger_cfg: DictConfig) -> dict[str, Any]:
    """What vidtl sets on a W&B run: one run per run folder (its ``id`` kept there, so a
    resumed run continues it), named after the folder unless the config names it (in a sweep:
    the job number, the sweep being the group), tagged with a sweep's swept values."""
    output_dir = Path(cfg.paths.output_dir)
    options: dict[str, Any] = {"id": wandb_run_id(output_dir), "resume": "allow"}
    if not logger_cfg.get("name"):
        options["name"] = output_dir.name
    return options | multirun_wandb_options(cfg, logger_cfg)


def multirun_wandb_options(cfg: DictConfig, logger_cfg: DictConfig) -> dict[str, Any]:
    """In a multirun job: the sweep as the W&B group (unless the config names one) and the
    job's values of the swept keys as tags."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hydra_cfg = HydraConfig.get()
    options = sweep_run_options(cfg.task_name, hydra_cfg.sweep.dir,
                                list(hydra_cfg.overrides.task), list(cfg.get("tags") or []),
                                swept_keys(Path(hydra_cfg.sweep.dir)))
    if logger_cfg.get("group"):
        del options["group"]
    log.info("W&B run of a sweep job: group %s, tags %s", options.get("group", logger_cfg.group),
             options["tags"])
    return options


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def swept_keys(sweep_dir: Path) -> set[str] | None:
    """The keys a multirun varies, from the ``multirun.yaml`` Hydra writes in its sweep folder:
    command-line sweeps (``a=1,2``, ``range(...)``, ``choice(...)``...) and the sweeper's
    ``params`` (an Optuna search); ``None`` when the file is not there."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    saved = OmegaConf.load(path)
    parsed = OverridesParser.create().parse_overrides(list(saved.hydra.overrides.task))
    keys = {o.key_or_group for o in parsed if o.is_sweep_override()}
    params = OmegaConf.select(saved, "hydra.sweeper.params")
    return keys | set(params or {})


def sweep_run_options(task_name: str, sweep_dir: str, job_overrides: list[str],
                      tags: list[str], swept: set[str] | None = None) -> dict[str, Any]:
    """W&B ``group`` ``<task>-<sweep folder>`` (the sweep's start time) and ``tags``: ``tags``
    plus the job's values of the ``swept`` keys (unknown: its overrides, leaving out paths and
    Hydra settings); W&B caps a tag at 64 characters."""
    if swept is not None:
        varied = [o for o in job_overrides if _key(o) in swept]
    else:
        varied = [o for o in job_overrides
                  if not o.lstrip("+~").startswith(("hydra.", "paths."))
                  and "/" not in o.partition("=")[2]]
    return {"group": f"{task_name}-{Path(sweep_dir).name}",
            "tags": [*tags, *(o[:64] for o in varied)]}


WANDB_RUN_ID = "wandb_run_id.txt"


def wandb_run_id(output_dir: Path) -> str:
    """The W&B run id of the run folder ``output_dir``: made once (by the rank-zero process)
    and kept in ``wandb_run_id.txt``, so that resuming the run continues the same W&B run."""
    from lightning.pytorch.utilities import rank_zero_only

    path = output_dir / WANDB_RUN_ID
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]  # W&B ids: letters and digits
    if rank_zero_only.rank == 0:  # other ranks never start a W&B run
        write_text_atomic(path, run_id + "\n")
    return run_id


def build_callbacks(cfg: DictConfig, has_logger: bool = True) -> list[L.Callback]:
    """Callbacks of ``cfg.callbacks``; without a logger, those that need one are left out."""
    callbacks = []
    for name, callback_cfg in (cfg.get("callbacks") or {}).items():
        if isinstance(callback_cfg, DictConfig) and "_target_" in callback_cfg:
            callback = instantiate(callback_cfg)
            if not has_logger and isinstance(callback, NEED_A_LOGGER):
                log.info("callback %s left out: it needs a logger (logger=none)", name)
                continue
            callbacks.append(callback)
    return callbacks


def finish_loggers(loggers: list[Any]) -> None:
    """Close each logger's run (so that multirun jobs stay separate runs)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()
        else:
            logger.finalize("success")


def json_number(value: Any) -> Any:
    """A metric as a JSON number (``None`` for NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(output_dir: Path, metrics: dict[str, Any]) -> str:
    """Write ``metrics.json`` atomically; return the JSON line."""
    text = json.dumps({k: json_number(v) for k, v in metrics.items()}, sort_keys=True)
    write_text_atomic(output_dir / "metrics.json", text + "\n")
    return text
