"""The LightningModule: training, validation and test of a :class:`VideoClassifier`."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MetricCollection

from vidtl.data.clips.batches import ClipBatch, FeatureBatch, ViewsBatch
from vidtl.data.loading.device_stage import DeviceStage
from vidtl.data.loading.rank_shares import buffers_from_rank_zero, gather_uneven
from vidtl.evaluation.accuracy_metrics import accuracy_metrics
from vidtl.evaluation.video_results import VideoResults
from vidtl.evaluation.view_scores import aggregate_views, check_view_scoring, score_views
from vidtl.finetune.schedule import FinetuneSchedule
from vidtl.models.classifier import VideoClassifier
from vidtl.training.batch_mixing import BatchMixing
from vidtl.training.class_weights import pos_weight_tensor
from vidtl.training.mean_loss import MeanLoss
from vidtl.training.operating_points import (
    DetectionScores,
    check_task,
    multi_hot,
    operating_points_for,
)

# The device stage runs in transfer_batch_to_device on purpose; Lightning's notice is noise.
warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")

OptimizerFactory = Callable[[Iterable[dict[str, Any]]], Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def check_hook_signatures(module: L.LightningModule) -> None:
    """A subclass's ``mix_batch`` of vidtl 0.4 (``clips, labels``) is named at once, not at
    its first training step (0.5 passes the typed batch: docs/upgrading.md)."""
    required = [p for p in inspect.signature(module.mix_batch).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) != 1:
        raise TypeError(f"{type(module).__qualname__}.mix_batch takes (batch) since vidtl 0.5 "
                        f"and returns (mixed batch, targets); its signature is "
                        f"{inspect.signature(module.mix_batch)} (see docs/upgrading.md)")


class VideoClassificationModule(L.LightningModule):
    """Fine-tunes a :class:`VideoClassifier` with cross-entropy.

    Batches arrive from the loader typed by kind (:mod:`vidtl.data.clips.batches`): uint8
    clips ``(B, T, C, H, W)`` (or JPEG bytes), test views, or cached frame features; the
    ``device_stage`` (:class:`~vidtl.data.loading.device_stage.DeviceStage`, built from the data
    config's loading plan) takes them to the device, decodes, crops and flips where the plan
    says, and normalises with the backbone's mean and std, in one hook
    (:meth:`transfer_batch_to_device`). Without one, batches are only normalised.
    Subclasses override the small steps: :meth:`forward_clips`, :meth:`forward_features`,
    :meth:`mix_batch`,
    :meth:`compute_loss`, :meth:`configure_param_groups`.

    The loss options live here together: ``label_smoothing``, ``class_weights``, and batch
    mixing (``mixup_alpha``, ``cutmix_alpha``: off at 0; see
    :class:`~vidtl.training.batch_mixing.BatchMixing`). Validation and test report the same
    loss definition as training (with the smoothing and weights, without the mixing).

    ``task="multilabel"``: sigmoid outputs and binary cross-entropy against multi-hot targets
    (``pos_weight`` per class on request), metrics mAP and F1 at per-class thresholds. The
    thresholds (and, for a single-label model read as a detector of one class, its one
    threshold) live in :attr:`operating_points`
    (:class:`~vidtl.training.operating_points.OperatingPoints`), chosen on validation by
    ``threshold`` (``f1``, ``precision@0.9``, ``recall@0.9``, ``fixed``: ``fixed_threshold``).
    """

    def __init__(
        self,
        classifier: VideoClassifier,
        class_names: list[str],
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        label_smoothing: float = 0.0,
        finetune: FinetuneSchedule | None = None,
        device_stage: DeviceStage | None = None,
        view_aggregation: str = "softmax",
        view_chunk: int = 32,
        class_weights: list[float] | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        cutmix_probability: float = 0.5,
        task: str = "single_label",
        pos_weight: list[float] | str | None = None,
        threshold: str = "f1",
        fixed_threshold: float = 0.5,
        positive_class: str | None = None,
    ) -> None:
        super().__init__()
        if len(class_names) != classifier.num_classes:
            raise ValueError(f"{len(class_names)} class names for {classifier.num_classes} classes")
        self.save_hyperparameters(
            ignore=["classifier", "optimizer", "scheduler", "finetune", "device_stage"],
            logger=False)
        self.classifier = classifier
        self.class_names = list(class_names)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.label_smoothing = label_smoothing
        self.batch_mixing = BatchMixing(mixup_alpha, cutmix_alpha, cutmix_probability)
        self.finetune = finetune
        if finetune is not None:
            finetune.prepare(classifier)
        config = classifier.backbone.data_config
        if class_weights is not None and len(class_weights) != classifier.num_classes:
            raise ValueError(f"{len(class_weights)} class weights for "
                             f"{classifier.num_classes} classes")
        self.register_buffer("class_weights", None if class_weights is None else
                             torch.tensor(class_weights, dtype=torch.float32), persistent=False)
        self.device_stage = device_stage or DeviceStage(config.mean, config.std)
        num_classes = classifier.num_classes
        self.task = check_task(task)
        self.multilabel = self.task == "multilabel"
        self.register_buffer("pos_weight", pos_weight_tensor(pos_weight, self.multilabel,
                                                             num_classes))
        self.operating_points = operating_points_for(
            self.task, self.class_names, threshold, fixed_threshold, positive_class)
        accuracy = not self.multilabel
        self.val_metrics = accuracy_metrics(num_classes, "val/") if accuracy else None
        self.test_clip_metrics = accuracy_metrics(num_classes, "test/clip_") if accuracy else None
        self.val_loss, self.test_loss = MeanLoss(), MeanLoss()  # exact over processes
        check_view_scoring(view_aggregation, view_chunk)  # fails early on a bad value
        check_hook_signatures(self)
        self.view_aggregation = view_aggregation
        self.view_chunk = view_chunk
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_results: VideoResults | None = None

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Not Lightning's: a vidtl checkpoint rebuilds its classifier from its saved config,
        which ``vidtl.load(path)`` does (in the class the checkpoint was trained with)."""
        raise TypeError(
            f"{cls.__name__}.load_from_checkpoint cannot rebuild a vidtl checkpoint (the "
            f"classifier comes from its saved config); use vidtl.load({str(checkpoint_path)!r}"
            f", custom_imports=[...]).module, which gives the module in its own class")

    def transfer_batch_to_device(self, batch: Any, device: torch.device,
                                 dataloader_idx: int) -> Any:
        """The one device-side hook: the :attr:`device_stage` moves the loader's batch to
        ``device`` and makes it ready for the model."""
        training = self._trainer is not None and self.trainer.training
        return self.device_stage(batch, device, training,
                                 self.augment_generator() if training else None)

    def augment_generator(self) -> np.random.Generator:
        """The device augmentation's random numbers of this step: a function of the seed, the
        step and the rank, so a resumed run draws what an uninterrupted one would."""
        rank = self._trainer.global_rank if self._trainer is not None else 0
        return np.random.default_rng([torch.initial_seed(), self.global_step, rank])

    def forward_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits for normalised clips ``(B, T, C, H, W)``."""
        return self.classifier(clips)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for cached frame features ``(B, T, D)`` (``feature_cache``: the backbone is
        skipped)."""
        return self.classifier.classify_frame_features(features)

    def batch_logits(self, batch: ClipBatch | FeatureBatch) -> torch.Tensor:
        """Logits of a batch, by its kind (:mod:`vidtl.data.clips.batches`):
        :meth:`forward_features` for cached features, :meth:`forward_clips` for clips."""
        if isinstance(batch, FeatureBatch):
            return self.forward_features(batch.features)
        return self.forward_clips(batch.clips)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_clips(clips)

    def compute_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (with ``class_weights`` and label smoothing when set) against class
        indices ``(B,)`` or soft targets ``(B, num_classes)`` (mixed batches); for
        ``task=multilabel`` binary cross-entropy with logits against multi-hot targets
        (smoothed towards 0.5 by ``label_smoothing``; ``class_weights`` weigh each class's term,
        ``pos_weight`` its positives). Override it for another loss."""
        if self.multilabel:
            targets = multi_hot(targets, self.classifier.num_classes)
            if self.label_smoothing:
                targets = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
            return F.binary_cross_entropy_with_logits(
                logits.float(), targets, weight=self.class_weights, pos_weight=self.pos_weight)
        return F.cross_entropy(logits, targets, weight=self.class_weights,
                               label_smoothing=self.label_smoothing)

    def loss_weight(self, labels: torch.Tensor) -> torch.Tensor | int:
        """What a batch's mean loss weighs in an evaluation's mean: its clip count, or with
        ``class_weights`` their sum over its labels (the cross-entropy's own denominator), so
        ``val/loss`` and ``test/loss`` are the loss of the whole split as one batch, whatever
        the batch size."""
        if self.class_weights is None or self.multilabel:
            return len(labels)
        return self.class_weights[labels].sum()

    def mix_batch(self, batch: ClipBatch | FeatureBatch
                  ) -> tuple[ClipBatch | FeatureBatch, torch.Tensor]:
        """The training batch as the loss sees it, with its targets: the batch and its labels
        unchanged, or, with Mixup or CutMix on, the batch mixed and soft targets. Override it
        for another mixing."""
        if not self.batch_mixing.enabled:
            return batch, batch.labels
        return self.batch_mixing(batch, self.classifier.num_classes, self.augment_generator())

    def training_step(self, batch: ClipBatch | FeatureBatch, batch_idx: int) -> torch.Tensor:
        labels = batch.labels
        mixed, targets = self.mix_batch(batch)
        logits = self.batch_logits(mixed)
        loss = self.compute_loss(logits, targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        if not self.multilabel:
            accuracy = (logits.argmax(-1) == labels).float().mean()
            self.log("train/top1", accuracy, prog_bar=True, batch_size=len(labels))
        return loss

    def setup(self, stage: str) -> None:
        """One metric collection per named validation set of the data module (its
        ``validation_sets``: ``data.extra_val_lists``, or ``data.val_list`` as a list)."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        sets = getattr(datamodule, "validation_sets", None) or [("val", None)]
        self.validation_names = [name for _, name in sets]
        self.named_val_metrics = nn.ModuleDict({
            str(position): DetectionScores() if self.multilabel
            else accuracy_metrics(self.classifier.num_classes, f"val/{name}/")
            for position, name in enumerate(self.validation_names) if name}).to(self.device)
        self.named_val_losses = nn.ModuleDict({
            str(position): MeanLoss() for position, name in enumerate(self.validation_names)
            if name}).to(self.device)

    def _log_evaluation(self, logits: torch.Tensor, labels: torch.Tensor,
                        metrics: MetricCollection | DetectionScores | None, loss: MeanLoss,
                        prefix: str, prog_bar: bool) -> None:
        loss.update(self.compute_loss(logits, labels), self.loss_weight(labels))
        self.log(f"{prefix}loss", loss, add_dataloader_idx=False)
        points = self.operating_points
        if isinstance(metrics, DetectionScores) and points is not None:  # logged at epoch end
            metrics.update(*points.detection_inputs(logits, labels))
        elif metrics is not None:
            metrics.update(logits, labels)
            self.log_dict(metrics, batch_size=len(labels), prog_bar=prog_bar,
                          add_dataloader_idx=False)

    def validation_step(self, batch: ClipBatch | FeatureBatch, batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        """The first validation set is logged as ``val/top1``... (what checkpoints watch);
        each named set (several sets) as ``val/<name>/top1``..., the first under both."""
        labels = batch.labels
        logits = self.batch_logits(batch)
        if dataloader_idx == 0:
            self._log_evaluation(logits, labels, self.val_metrics, self.val_loss, "val/", True)
            if self.operating_points is not None:
                self.operating_points.val_scores.update(
                    *self.operating_points.detection_inputs(logits, labels))
        named = getattr(self, "named_val_metrics", {})
        if str(dataloader_idx) in named:
            name = self.validation_names[dataloader_idx]
            self._log_evaluation(logits, labels, named[str(dataloader_idx)],
                                 self.named_val_losses[str(dataloader_idx)], f"val/{name}/",
                                 False)

    def score_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits of uint8 clips ``(N, T, C, H, W)`` (normalised here)."""
        return self.forward_clips(self.device_stage.normalize(clips))

    def on_validation_epoch_start(self) -> None:
        buffers_from_rank_zero(self)  # one model, that of the checkpoints, on every process

    def on_validation_epoch_end(self) -> None:
        """The operating points' thresholds chosen on this epoch's validation scores (they
        are saved with its checkpoints) and the detection metrics at them: ``val/mAP``,
        ``val/f1_micro``... (multi-label) or ``val/precision``, ``val/roc_auc``... (a
        detector), and each named set's at the same thresholds."""
        points = self.operating_points
        if points is None:
            return
        for name, value in points.finish_validation().items():
            self.log(f"val/{name}", value, prog_bar=name == "mAP")
        for position, scores in getattr(self, "named_val_metrics", {}).items():
            if isinstance(scores, DetectionScores):
                found = points.metrics(*scores.compute())
                scores.reset()
                for name, value in found.items():
                    self.log(f"val/{self.validation_names[int(position)]}/{name}", value)

    def on_test_epoch_start(self) -> None:
        buffers_from_rank_zero(self)
        self._test_outputs = []
        self.test_results = None

    def test_step(self, batch: ViewsBatch, batch_idx: int) -> None:
        """Multi-view test: every view is a clip (``test/clip_*`` metrics); the views' scores
        are averaged per video, kept for :meth:`on_test_epoch_end`."""
        views, labels, videos = batch
        logits = score_views(views, self.score_clips, self.view_chunk)  # (B, V, K)
        clip_logits = logits.flatten(0, 1)
        clip_labels = labels.repeat_interleave(logits.shape[1], dim=0)
        self.test_loss.update(self.compute_loss(clip_logits, clip_labels),
                              self.loss_weight(clip_labels))
        self.log("test/loss", self.test_loss)
        if self.test_clip_metrics is not None:
            self.test_clip_metrics.update(clip_logits, clip_labels)
            self.log_dict(self.test_clip_metrics, batch_size=len(clip_labels))
        scores = aggregate_views(logits, self.view_aggregation, self.multilabel)
        self._test_outputs.append((videos.detach(), labels.detach(), scores.detach()))

    def on_test_epoch_end(self) -> None:
        """Video-level metrics over every test video, each counted once (gathered from all
        processes); the results stay in :attr:`test_results` for the reports."""
        num_classes = self.classifier.num_classes
        if self._test_outputs:
            videos, labels, scores = (torch.cat(parts) for parts in zip(*self._test_outputs))
        else:
            videos = torch.zeros(0, dtype=torch.int64, device=self.device)
            labels = (torch.zeros(0, num_classes, device=self.device) if self.multilabel
                      else videos)
            scores = torch.zeros(0, num_classes, device=self.device)
        if self.multilabel:  # single-label rows under task=multilabel: one-hot
            labels = multi_hot(labels, num_classes)
        if self.trainer.world_size > 1:
            videos, labels, scores = (gather_uneven(self, t) for t in (videos, labels, scores))
        self.test_results = VideoResults.from_batches([videos], [labels], [scores])
        self._test_outputs = []
        found = {} if self.multilabel else self.test_results.metrics(num_classes)
        if self.operating_points is not None and len(self.test_results):
            scores = torch.from_numpy(self.test_results.scores)
            if self.view_aggregation == "logits" and not self.multilabel:
                scores = scores.softmax(-1)  # the thresholds are probabilities
            found |= self.operating_points.metrics(*self.operating_points.video_inputs(
                scores, torch.from_numpy(self.test_results.labels)))
        for name, value in found.items():
            self.log(f"test/{name}", value, sync_dist=True)  # one value on every process

    def on_train_epoch_start(self) -> None:
        if self.finetune is not None:
            self.finetune.apply_batchnorm_modes(self.classifier, self.current_epoch)

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        if self.finetune is not None:
            self.finetune.drop_frozen_gradients(optimizer, self.current_epoch)

    def train(self, mode: bool = True) -> VideoClassificationModule:
        super().train(mode)
        if mode and self.finetune is not None:  # BatchNorm layers the schedule keeps frozen
            epoch = self._trainer.current_epoch if self._trainer is not None else 0
            self.finetune.apply_batchnorm_modes(self.classifier, epoch)
        return self

    def configure_param_groups(self) -> list[dict[str, Any]]:
        """Named parameter groups, built once, each with an ``lr_scale``: the fine-tuning
        schedule's (one per backbone stage, ``temporal``, ``head``), else ``backbone``,
        ``temporal``, ``head``."""
        if self.finetune is not None:
            return self.finetune.param_groups(self.classifier)
        parts: dict[str, nn.Module] = {
            "backbone": self.classifier.backbone,
            "temporal": self.classifier.temporal,
            "head": self.classifier.head,
        }
        groups = []
        for name, part in parts.items():
            params = [p for p in part.parameters() if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr_scale": 1.0})
        return groups

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError("this module was built without an optimizer (evaluation only)")
        optimizer = self.optimizer_factory(self.configure_param_groups())
        for group in optimizer.param_groups:  # discriminative learning rates
            group["lr"] *= group.get("lr_scale", 1.0)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        epochs = max(self.trainer.max_epochs or 1, 1)
        scheduler = self.scheduler_factory(
            optimizer, total_steps=total_steps, steps_per_epoch=max(total_steps // epochs, 1)
        )
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
