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
