"""``vidtl-eval ckpt_path=...``: evaluate a checkpoint on the val and test subsets.

By default the data config saved in the checkpoint is used, read as
:mod:`vidtl.assembly.checkpoint_data` says (read only, vidtl's loader defaults, no URL the
checkpoint names); ``data.<key>=...`` changes one of its keys, and ``data=<name>`` picks
another dataset config altogether.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.checkpoint_data import (
    CheckpointData,
    checkpoint_data,
    with_checkpoint_geometry,
)
from vidtl.assembly.data import build_datamodule
from vidtl.assembly.model import operating_point_options
from vidtl.callbacks.sigterm_deadline import SigtermDeadline
from vidtl.cli import config_dir
from vidtl.cli.builders import (
    build_loggers,
    finish_loggers,
    write_metrics,
)
from vidtl.cli.errors import exit_on_user_error
from vidtl.data.annotations.carved_validation import CARVED_LIST, carved_fingerprint
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.stream_datamodule import ShardStreamDataModule
from vidtl.evaluation.reports import write_test_reports
from vidtl.evaluation.view_scores import check_view_scoring
from vidtl.inference.checkpoint_model import (
    CheckpointMismatchError,
    load_checkpoint,
    trained_model_from,
)
from vidtl.training.operating_points import report_options

__all__ = ["CheckpointMismatchError", "evaluate", "load_checkpoint"]

log = logging.getLogger(__name__)


def data_config(cfg: DictConfig, saved: dict[str, Any], origin: str) -> CheckpointData:
    """The saved data config with the non-null keys of ``data=from_checkpoint`` applied (read
    as :mod:`vidtl.assembly.checkpoint_data` says), or the data config chosen instead."""
    if not cfg.data.get("from_checkpoint", False):  # another dataset: the model's geometry
        return CheckpointData(with_checkpoint_geometry(cfg.data, saved["data"]), True)
    overrides = {key: value for key, value in OmegaConf.to_container(cfg.data).items()
                 if key != "from_checkpoint" and value is not None}
    return checkpoint_data(saved["data"], overrides, origin)


def match_classes(datamodule: VideoDataModule, class_names: list[str]) -> None:
    """Label the data as the checkpoint numbers its classes: by name when the data lists the
    same names in another order (not for a shard store, whose records carry their labels),
    else by position, with a warning when the names differ."""
    names = [str(n) for n in datamodule.class_names]
    if names != class_names:
        if (sorted(names) == sorted(class_names) and len(set(names)) == len(names)
                and not isinstance(datamodule, ShardStreamDataModule)):  # (its own records)
            datamodule.index.reorder_classes(class_names)  # (before any dataset is made)
            log.info("the data lists the checkpoint's classes in another order; labels are "
                     "matched by name")
        else:
            log.warning("class names differ between checkpoint and data; labels are matched by "
                        "index")


def check_carved_validation(record: dict[str, Any], datamodule: VideoDataModule) -> None:
    """Warn when the validation set carved here is not the one the run trained beside (videos
    missing or excluded here, another ``data.val_from_train``): it may hold training videos."""
    trained = record.get("carved_validation")
    now = carved_fingerprint(datamodule.index, datamodule.root)
    if isinstance(trained, str) and now is not None and now != trained:
        log.warning("the validation set carved from training here differs from the one the "
                    "run was validated on (missing or excluded videos, or other "
                    "data.val_from_train settings): val/ metrics may include videos it trained "
                    "on; its list is the run folder's %s", CARVED_LIST)


def operating_point_overrides(cfg: DictConfig) -> dict[str, Any]:
    """``eval.threshold``, ``eval.fixed_threshold``, ``eval.positive_class`` given here (not
    null): they replace the checkpoint's. The thresholds are then chosen again on the val
    subset; evaluating only the test subset keeps the checkpoint's thresholds (said once)."""
    given = {key: value for key, value in (cfg.get("eval") or {}).items() if value is not None}
    if not given:
        return {}
    if "val" not in cfg.subsets and set(given) & {"threshold", "fixed_threshold"}:
        log.warning("eval.threshold is applied when thresholds are chosen on the val subset; "
                    "subsets=%s keeps the checkpoint's thresholds", list(cfg.subsets))
    checked = operating_point_options(OmegaConf.create({"eval": given}))
    return {key: value for key, value in checked.items() if key in given}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path``; write and return ``metrics.json``."""
    check_view_scoring(cfg.view_aggregation, cfg.view_chunk)
    output_dir = Path(cfg.paths.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = load_checkpoint(cfg.ckpt_path, cfg.get("trusted_targets") or (),
                                 cfg.get("custom_imports") or (), cfg.get("max_checkpoint_gb"))
    class_names = list(checkpoint["vidtl"]["class_names"])
    data = data_config(cfg, checkpoint["vidtl"]["config"], str(cfg.ckpt_path))
    datamodule = build_datamodule(data.config, output_dir, data.quote_content)
    datamodule.prepare_data()
    if len(datamodule.class_names) != len(class_names):
        raise CheckpointMismatchError(
            f"checkpoint {cfg.ckpt_path} predicts {len(class_names)} classes but the dataset at "
            f"{datamodule.root} has {len(datamodule.class_names)}; evaluate it on the data it was "
            f"trained for"
        )
    match_classes(datamodule, class_names)
    module = trained_model_from(checkpoint, datamodule.num_frames,
                                view_aggregation=cfg.view_aggregation,
                                view_chunk=cfg.view_chunk,
                                **operating_point_overrides(cfg)).module

    loggers = build_loggers(cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[
        SigtermDeadline(cfg.get("sigterm_grace_s", 120))])
    metrics: dict[str, Any] = {"checkpoint": str(Path(cfg.ckpt_path).resolve())}
    try:
        for subset in cfg.subsets:
            if not datamodule.has_subset(subset):
                log.info("the dataset has no %s subset", subset)
                continue
            if subset == "val":  # every validation set
                metrics["validated_on"] = datamodule.validated_on
                check_carved_validation(checkpoint["vidtl"], datamodule)
                results = {k: v for result in trainer.validate(module, datamodule=datamodule)
                           for k, v in result.items()}
            elif subset == "test":
                results = trainer.test(module, datamodule=datamodule)[0]
                if trainer.is_global_zero and module.test_results is not None:
                    write_test_reports(output_dir, module.test_results, class_names,
                                       datamodule.dataset("test").records, loggers,
                                       **report_options(module))
            else:
                raise ValueError(f"subsets may hold 'val' and 'test', got {subset!r}")
            metrics.update({k: float(v) for k, v in results.items() if k.startswith(subset + "/")})
    finally:
        metrics["skipped_videos"] = datamodule.skipped.compact(rewrite=trainer.is_global_zero)
        metrics["videos_with_replaced_frames"] = datamodule.skipped.replaced()
        metrics["train_clips_per_s"] = None  # no training in an evaluation run
        if trainer.is_global_zero:  # one metrics.json for a run of several processes
            text = write_metrics(output_dir, metrics)
        finish_loggers(loggers)
    if trainer.is_global_zero:
        print(text, flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
