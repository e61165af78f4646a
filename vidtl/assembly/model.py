"""The model config turned into a classifier and a LightningModule, ready to train or to run.

``build_module`` is the one place where backbone, temporal module, head, the device stage and
the speed options (channels-last memory, ``torch.compile``) come together: ``vidtl-train``,
``vidtl-bench-data``, checkpoint loading and the benchmarks all call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from vidtl.core.errors import UserError
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.models.classifier import VideoClassifier
from vidtl.models.lora import apply_lora
from vidtl.training.module import VideoClassificationModule

ModuleFactory = Callable[..., VideoClassificationModule]


def build_classifier(model: DictConfig, num_classes: int, num_frames: int,
                     pretrained: Any = None) -> VideoClassifier:
    """Backbone (with LoRA layers when ``model.lora`` is set), temporal module (built for clips
    of ``num_frames``) and head from the ``model`` config; ``pretrained`` overrides the
    backbone's (``False`` when the weights come from a checkpoint anyway)."""
    overrides = {} if pretrained is None else {"pretrained": pretrained}
    backbone = instantiate(model.backbone, **overrides)
    if model.get("lora"):  # before the temporal module, whose hooks then see the LoRA layers
        apply_lora(backbone, instantiate(model.lora))
    temporal = instantiate(model.temporal)(in_features=backbone.num_features,
                                           num_frames=num_frames)
    return VideoClassifier(backbone, temporal, num_classes, dropout=model.get("dropout", 0.5))


def build_module(model: DictConfig, class_names: list[str], num_frames: int,
                 datamodule: VideoDataModule | None = None,
                 module_factory: ModuleFactory = VideoClassificationModule,
                 pretrained: Any = None, channels_last: bool = False, compile: bool = False,
                 **module_options: Any) -> VideoClassificationModule:
    """The LightningModule (vidtl's or ``module_factory``, a subclass) around a new classifier.

    With ``datamodule``, the module's device stage is the one its loading plan needs (decode,
    crop and flip on the device where the plan moved them); without, it only normalises.
    ``channels_last`` and ``compile`` (in place: parameter names and checkpoints stay the same)
    apply to the classifier; ``module_options`` go to the module.
    """
    classifier = build_classifier(model, len(class_names), num_frames, pretrained)
    if datamodule is not None:
        config = classifier.backbone.data_config
        module_options["device_stage"] = datamodule.plan.device_stage(
            datamodule.pipeline, config.mean, config.std)
    module = module_factory(classifier, class_names, **module_options)
    if channels_last:
        classifier.use_channels_last()
    if compile:
        classifier.backbone.compile()
    return module


def operating_point_options(config: Any) -> dict[str, Any]:
    """The module options that a run's ``eval`` keys give (``eval.threshold``,
    ``eval.fixed_threshold``, ``eval.positive_class``), checked as input (a checkpoint's saved
    config is one): each of the expected kind, else a :class:`UserError` naming the key."""
    settings = config.get("eval") if config is not None else None
    settings = settings if settings is not None else {}
    rule = settings.get("threshold", "f1")
    fixed = settings.get("fixed_threshold", 0.5)
    positive = settings.get("positive_class")
    if not isinstance(rule, str):
        raise UserError(f"eval.threshold must be f1, precision@P, recall@R or fixed, got {rule!r}")
    if isinstance(fixed, bool) or not isinstance(fixed, (int, float)) or not 0 <= fixed <= 1:
        raise UserError(f"eval.fixed_threshold must be a probability in [0, 1], got {fixed!r}")
    if positive is not None and (isinstance(positive, bool)
                                 or not isinstance(positive, (str, int))):
        raise UserError(f"eval.positive_class must be a class name, got {positive!r}")
    return {"threshold": rule, "fixed_threshold": float(fixed),
            "positive_class": None if positive is None else str(positive)}
