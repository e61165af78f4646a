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
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.data import build_datamodule
from vidtl.assembly.model import build_module, operating_point_options
from vidtl.assembly.training_data import feature_cache_key, training_data
from vidtl.callbacks.preemption import PreemptionCheckpoint
from vidtl.callbacks.restored_paths import RestoredPaths
from vidtl.callbacks.resume_changes import ApplyNewOptimizer
from vidtl.callbacks.run_record import RunRecord
from vidtl.callbacks.same_start import SameStartOnEveryProcess
from vidtl.callbacks.sigterm_deadline import SigtermDeadline
from vidtl.callbacks.train_throughput import TrainThroughput
from vidtl.cli import config_dir
from vidtl.cli.builders import (
    build_callbacks,
    build_loggers,
    finish_loggers,
    logged_config,
    resolved_container,
    write_metrics,
)
from vidtl.cli.errors import exit_on_user_error
from vidtl.cli.starting_point import start_weights
from vidtl.core.custom_imports import import_custom
from vidtl.core.errors import UserError
from vidtl.data.annotations.carved_validation import (
    CARVED_LIST,
    carved_fingerprint,
    write_carved_list,
)
from vidtl.data.loading.datamodule import TEST_LIST, VideoDataModule
from vidtl.evaluation.reports import write_test_reports
from vidtl.training.atomic_checkpoint_io import AtomicCheckpointIO
from vidtl.training.class_weights import (
    balanced_multilabel_weights,
    balanced_pos_weight,
    class_weights,
)
from vidtl.training.feature_cache import FeatureCacheSettings
from vidtl.training.footprint import parameter_counts, peak_memory_mb
from vidtl.training.lr_scaling import global_batch, linearly_scaled_lr
from vidtl.training.module import VideoClassificationModule
from vidtl.training.operating_points import report_options
from vidtl.training.resume_point import (
    FINAL_CHECKPOINT,
    LAST_CHECKPOINT,
    ResumePoint,
    resume_point,
    resumed_changes,
    start_of,
)

log = logging.getLogger(__name__)


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}


def _checkpoint_to_evaluate(trainer: L.Trainer, val_is_test: bool) -> str | None:
    """The best checkpoint by validation, unless validation is the test set (then choosing by
    it would flatter the test numbers): then the final weights (``None``)."""
    checkpointing = trainer.checkpoint_callback
    best = getattr(checkpointing, "best_model_path", "") if checkpointing else ""
    if val_is_test:  # (said when the run started: say_what_validation_is)
        return None
    if not best:
        log.info("no best checkpoint was saved; evaluating the final weights")
        return None
    return best


def say_what_validation_is(cfg: DictConfig, datamodule: VideoDataModule, trainer: L.Trainer,
                           output_dir: Path) -> None:
    """Write the carved validation list to the run folder; warn once when validation is the
    test list and a sweep or search ranks jobs by a validation metric."""
    if datamodule.index.val_carved and trainer.is_global_zero:
        write_carved_list(output_dir / CARVED_LIST, datamodule.index, datamodule.root)
    if datamodule.validated_on != TEST_LIST:
        return
    sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    metric = cfg.get("optimized_metric") or "val/top1"
    if sweeping:
        log.warning("validation is the test list (%s has no validation split): this sweep's "
                    "%s, which results.csv and searches rank jobs by, is computed on the test "
                    "videos. Set data.val_from_train=0.1 to choose on videos carved from "
                    "training.", datamodule.spec.name, metric)
    else:
        log.info("validation is the test list (%s has no validation split): val/ numbers come "
                 "from the test videos (one clip each) and the final weights are evaluated; "
                 "data.val_from_train=0.1 validates on videos carved from training",
                 datamodule.spec.name)


def run_callbacks(cfg: DictConfig, output_dir: Path, start: ResumePoint | None = None,
                  carved_validation: str | None = None) -> list[L.Callback]:
    """The callbacks every training run has: its record in each checkpoint (with the digest
    of its carved validation set), restored paths checked, one start for every process,
    preemption, the SIGTERM deadline, periodic checkpoints, and the new optimizer settings of
    a run resumed from ``start`` when they apply."""
    apply_changes = start is not None and resumed_changes(
        start, resolved_container(cfg), str(cfg.get("resume_changes", "refuse")))
    callbacks = [RunRecord(resolved_container(cfg), carved_validation), RestoredPaths(),
                 SameStartOnEveryProcess(start_of(start), resolved_container(cfg)),
                 PreemptionCheckpoint(output_dir / LAST_CHECKPOINT),
                 SigtermDeadline(cfg.get("sigterm_grace_s", 120))]
    if apply_changes:
        callbacks.append(ApplyNewOptimizer())
    if cfg.get("checkpoint_every_n_steps"):
        callbacks.append(step_checkpoint(output_dir, int(cfg.checkpoint_every_n_steps)))
    return callbacks


def step_checkpoint(output_dir: Path, every_n_steps: int) -> ModelCheckpoint:
    """``checkpoints/last.ckpt`` also rewritten every ``every_n_steps`` training steps."""
    return ModelCheckpoint(dirpath=output_dir / LAST_CHECKPOINT.parent,
                           filename=LAST_CHECKPOINT.stem, monitor=None, save_top_k=1,
                           every_n_train_steps=every_n_steps, enable_version_counter=False)


def task_options(module_cfg: DictConfig | None, datamodule: VideoDataModule
                 ) -> dict[str, Any]:
    """The module's loss weights from the training set (``module.class_weights`` and, for
    ``task=multilabel``, ``module.pos_weight``), after checking that the data fits the task:
    multi-label data (rows with several labels, Charades) needs ``task=multilabel``."""
    module_cfg = module_cfg or OmegaConf.create({})
    multilabel = module_cfg.get("task", "single_label") == "multilabel"
    if datamodule.index.multilabel and not multilabel:
        raise UserError(f"{datamodule.spec.name} under {datamodule.root} is multi-label (videos "
                        f"with several labels, or labels over spans): add task=multilabel")
    records = datamodule.dataset("train").records
    num_classes = len(datamodule.class_names)
    weighting = module_cfg.get("class_weights")
    if not multilabel:
        return {"class_weights": class_weights(weighting, lambda: [r.label for r in records],
                                               num_classes)}
    if weighting not in (None, "balanced"):
        raise UserError(f"module.class_weights must be null or balanced, got {weighting!r}")
    label_sets = [r.labels() for r in records]
    options: dict[str, Any] = {"class_weights": None if weighting is None
                               else balanced_multilabel_weights(label_sets, num_classes)}
    if module_cfg.get("pos_weight") == "balanced":
        options["pos_weight"] = balanced_pos_weight(label_sets, num_classes)
    return options


def build_training_module(cfg: DictConfig, datamodule: VideoDataModule
                          ) -> VideoClassificationModule:
    """vidtl's LightningModule, or the subclass that ``module._target_`` names, with the
    optimizer, schedule and fine-tuning of ``cfg``; ``module.class_weights=balanced`` becomes
    weights from the training set."""
    class_names = datamodule.class_names
    module_cfg = cfg.get("module")
    factory = instantiate(module_cfg) if module_cfg else VideoClassificationModule
    return build_module(
        cfg.model, class_names, datamodule.num_frames, datamodule=datamodule,
        module_factory=factory,
        channels_last=bool(cfg.model.get("channels_last")),
        compile=bool(cfg.model.get("compile")),
        **task_options(module_cfg, datamodule),
        **operating_point_options(cfg),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        finetune=instantiate(cfg.finetune) if cfg.get("finetune") else None,
        view_aggregation=cfg.view_aggregation,
        view_chunk=cfg.view_chunk,
    )


def scaled_optimizer(cfg: DictConfig, batch_size: int, trainer: L.Trainer) -> Any:
    """``lr_reference_batch``: the optimizer with its learning rate scaled linearly from that
    global batch to the real one."""
    batch = global_batch(batch_size, trainer.num_devices, trainer.num_nodes,
                         trainer.accumulate_grad_batches)
    return instantiate(cfg.optimizer, lr=linearly_scaled_lr(cfg.optimizer.lr, batch,
                                                            cfg.lr_reference_batch))


def evaluate_trained(trainer: L.Trainer, module: VideoClassificationModule,
                     datamodule: VideoDataModule, test: bool, output_dir: Path,
                     loggers: list[Any]) -> dict[str, Any]:
    """Validate and (if asked and the data has one) test the checkpoint to evaluate; write the
    test reports."""
    checkpoint = _checkpoint_to_evaluate(trainer, datamodule.val_is_test)
    final = output_dir / FINAL_CHECKPOINT
    if checkpoint is None:  # the final weights, kept as a file that results.csv can name
        trainer.save_checkpoint(final, weights_only=False)
    metrics: dict[str, Any] = {
        "evaluated_checkpoint": checkpoint or str(final),
        "evaluated_weights": "final" if checkpoint is None else "best epoch by validation",
        "validated_on": datamodule.validated_on}
    results = trainer.validate(module, datamodule=datamodule, ckpt_path=checkpoint,
                               weights_only=True)
    for result in results:  # one per validation set
        metrics.update(_scalars(result, "val/"))
    if test and datamodule.has_subset("test"):
        results = trainer.test(module, datamodule=datamodule, ckpt_path=checkpoint,
                               weights_only=True)
        metrics.update(_scalars(results[0], "test/"))
        if trainer.is_global_zero and module.test_results is not None:
            write_test_reports(output_dir, module.test_results, datamodule.class_names,
                               datamodule.dataset("test").records, loggers,
                               **report_options(module))
    return metrics


def fit_data(cfg: DictConfig, module: VideoClassificationModule,
             datamodule: VideoDataModule) -> L.LightningDataModule:
    """What ``trainer.fit`` reads (:func:`vidtl.assembly.training_data.training_data`)."""
    options = cfg.get("feature_cache")
    settings = FeatureCacheSettings(**resolved_container(options)) if options else None
    key = feature_cache_key(resolved_container(cfg.model).get("backbone"),
                            resolved_container(cfg.data), cfg.get("seed"))
    return training_data(module, datamodule, settings, key,
                         Path(cfg.paths.data_dir) / "feature_cache")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then validate and (if the data has one) test the best checkpoint.

    Writes ``metrics.json`` and ``checkpoints/`` under ``cfg.paths.output_dir`` and returns the
    metrics.
    """
    import_custom(cfg.get("custom_imports"))
    output_dir = Path(cfg.paths.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg.data, output_dir)
    datamodule.prepare_data()
    module = build_training_module(cfg, datamodule)
    throughput = TrainThroughput()
    point = resume_point(cfg.get("resume"), cfg.get("ckpt_path"), output_dir,
                         cfg.get("max_checkpoint_gb"))
    start_weights(cfg, module, point, datamodule.class_names)
    loggers = build_loggers(cfg, point.step)
    callbacks = [*build_callbacks(cfg, has_logger=bool(loggers)), throughput,
                 *run_callbacks(cfg, output_dir, point, carved_fingerprint(datamodule.index,
                                                                           datamodule.root))]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[AtomicCheckpointIO()])
    say_what_validation_is(cfg, datamodule, trainer, output_dir)
    if cfg.get("lr_reference_batch"):
        module.optimizer_factory = scaled_optimizer(cfg, datamodule.batch_size, trainer)
    footprint = parameter_counts(module)
    log.info("trainable parameters: %d of %d (%.2f%%)", footprint["trainable_params"],
             footprint["total_params"], 100 * footprint["trainable_share"])
    for logger in loggers:
        logger.log_hyperparams({**logged_config(cfg), **footprint})

    metrics: dict[str, Any] = {}
    try:
        trainer.fit(module, datamodule=fit_data(cfg, module, datamodule), ckpt_path=point.path,
                    weights_only=True)
        metrics |= evaluate_trained(trainer, module, datamodule, bool(cfg.get("test", True)),
                                    output_dir, loggers)
    finally:
        metrics["skipped_videos"] = datamodule.skipped.compact(rewrite=trainer.is_global_zero)
        metrics["videos_with_replaced_frames"] = datamodule.skipped.replaced()
        metrics["train_clips_per_s"] = throughput.clips_per_s
        metrics |= footprint | peak_memory_mb(module.device)
        for logger in loggers:
            logger.log_metrics({k: metrics[k] for k in ("peak_rss_mb", "peak_gpu_memory_mb")
                                if k in metrics}, step=trainer.global_step)
        if trainer.is_global_zero:  # one metrics.json for a run of several processes
            text = write_metrics(output_dir, metrics)
        finish_loggers(loggers)
    if metrics["skipped_videos"] or metrics["videos_with_replaced_frames"]:
        log.warning("%d videos were skipped and %d read with replaced frames; see %s",
                    metrics["skipped_videos"], metrics["videos_with_replaced_frames"],
                    output_dir / "skipped_videos.txt")
    log.info("run folder: %s", output_dir)
    if trainer.is_global_zero:
        print(text, flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


if __name__ == "__main__":
    main()
