"""``vidtl-train``: fine-tune a pretrained image backbone on video clips, then evaluate it.

Run with no arguments, it generates a small synthetic dataset (cached) and fine-tunes the
bundled ImageNet EfficientNet-Lite0 on it. Any config key can be overridden; ``-m`` sweeps.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from vidtl.callbacks.run_record import RunRecord
from vidtl.callbacks.throughput import TrainThroughput
from vidtl.cli import config_dir
from vidtl.cli.builders import (
    build_callbacks,
    build_classifier,
    build_datamodule,
    build_loggers,
    finish_loggers,
    plain,
    write_metrics,
)
from vidtl.models.module import VideoClassificationModule

log = logging.getLogger(__name__)


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then validate and (if the data has one) test the best checkpoint.

    Writes ``metrics.json`` and ``checkpoints/`` under ``cfg.paths.output_dir`` and returns the
    metrics.
    """
    output_dir = Path(cfg.paths.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg.data, output_dir)
    datamodule.prepare_data()
    class_names = datamodule.class_names
    classifier = build_classifier(cfg.model, len(class_names), datamodule.num_frames)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = VideoClassificationModule(
        classifier,
        class_names,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        label_smoothing=cfg.model.get("label_smoothing", 0.0),
    )
    throughput = TrainThroughput()
    callbacks = [*build_callbacks(cfg), throughput, RunRecord(plain(cfg))]
    loggers = build_loggers(cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(plain(cfg))

    metrics: dict[str, Any] = {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        checkpointing = trainer.checkpoint_callback
        best = "best" if checkpointing and checkpointing.best_model_path else None
        if best is None and not trainer.fast_dev_run:
            log.warning("no best checkpoint was saved; evaluating the final weights")
        metrics.update(_scalars(trainer.validate(module, datamodule=datamodule, ckpt_path=best)[0],
                                "val/"))
        if cfg.get("test", True) and datamodule.has_subset("test"):
            metrics.update(_scalars(trainer.test(module, datamodule=datamodule, ckpt_path=best)[0],
                                    "test/"))
        if best:
            metrics["best_checkpoint"] = str(trainer.checkpoint_callback.best_model_path)
    finally:
        metrics["skipped_videos"] = datamodule.skipped.compact()
        metrics["train_clips_per_s"] = throughput.clips_per_s
        text = write_metrics(output_dir, metrics)
        finish_loggers(loggers)
    if metrics["skipped_videos"]:
        log.warning("%d videos were skipped; see %s", metrics["skipped_videos"],
                    output_dir / "skipped_videos.txt")
    log.info("run folder: %s", output_dir)
    if trainer.is_global_zero:
        print(text, flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


if __name__ == "__main__":
    main()
