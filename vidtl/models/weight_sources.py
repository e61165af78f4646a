"""Where a checkpoint's tensors go in a backbone, as each source of weights declares it.

Nothing here is inferred from what a name looks like; every rule is a declaration of the
library or tool that wrote the names:

- A model's classifier (the tensors a headless backbone has no place for) is declared by the
  library that built it: timm's ``pretrained_cfg["classifier"]`` (as timm's own loader reads
  it), torchvision's per model class in :data:`TORCHVISION_CLASSIFIERS`.
- A checkpoint file holds the model's state dict under the key of a container
  (:data:`CONTAINERS`), its tensors under the prefix of a layout (:data:`LAYOUTS`: the model
  itself, DataParallel's ``module.``, a vidtl checkpoint's ``classifier.backbone.model.``, ...),
  beside the parts of that layout that are not the backbone (a vidtl run's temporal module and
  head).
- A module kept inside a wrapper (the TSM repository's ``TemporalShift``, which stores the
  convolution it shifts as ``.net``) is declared in :data:`WRAPPERS`; its tensors map to the
  unwrapped module's only where the model has that module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# The dictionaries a checkpoint file keeps its state dict under, unwrapped in this order
# (Lightning and torchvision's references: ``state_dict``; DeiT, MAE, timm's train script:
# ``model``; DataParallel saved whole: ``module``).
CONTAINERS = ("state_dict", "model", "module")

# torchvision's classifier of each model class (by its defining module and name, found
# through the class's bases, so a quantizable subclass has its float parent's): the linear
# layer a backbone drops, as ``model.get_submodule`` names it.
TORCHVISION_CLASSIFIERS: dict[str, str] = {
    "torchvision.models.alexnet.AlexNet": "classifier.6",
    "torchvision.models.convnext.ConvNeXt": "classifier.2",
    "torchvision.models.densenet.DenseNet": "classifier",
    "torchvision.models.efficientnet.EfficientNet": "classifier.1",
    "torchvision.models.googlenet.GoogLeNet": "fc",
    "torchvision.models.inception.Inception3": "fc",
    "torchvision.models.maxvit.MaxVit": "classifier.5",
    "torchvision.models.mnasnet.MNASNet": "classifier.1",
    "torchvision.models.mobilenetv2.MobileNetV2": "classifier.1",
    "torchvision.models.mobilenetv3.MobileNetV3": "classifier.3",
    "torchvision.models.regnet.RegNet": "fc",
    "torchvision.models.resnet.ResNet": "fc",
    "torchvision.models.shufflenetv2.ShuffleNetV2": "fc",
    "torchvision.models.swin_transformer.SwinTransformer": "head",
    "torchvision.models.vgg.VGG": "classifier.6",
    "torchvision.models.vision_transformer.VisionTransformer": "heads.head",
    "torchvision.models.video.mvit.MViT": "head.1",
    "torchvision.models.video.resnet.VideoResNet": "fc",
    "torchvision.models.video.swin_transformer.SwinTransformer3d": "head",
}


@dataclass(frozen=True)
class Layout:
    """How a writer of checkpoints names a backbone's tensors: the model's own keys after
    ``prefix``, next to ``others``, modules (named from the file's root) that are not the
    backbone's: their tensors have no place in it, which is expected."""

    origin: str
    prefix: str
    others: tuple[str, ...] = ()


# Tried in this order; a key goes where the first layout that names a tensor of the model puts
# it. The model's own classifier is expected under every prefix.
LAYOUTS = (
    Layout("the model itself (timm, torchvision, a vidtl Backbone's model)", ""),
    Layout("Cadene's pretrainedmodels", "", others=("last_linear",)),
    Layout("DataParallel or DistributedDataParallel", "module."),
    Layout("a vidtl Backbone; a Lightning module holding the model as model", "model."),
    Layout("OpenMMLab (mmpretrain, mmaction2)", "backbone.", others=("head", "cls_head")),
    Layout("a vidtl VideoClassifier", "backbone.model.", others=("temporal", "head")),
    Layout("a module holding the model as encoder", "encoder."),
    Layout("a vidtl checkpoint", "classifier.backbone.model.",
           others=("classifier.temporal", "classifier.head")),
    Layout("the TSM repository (DataParallel)", "module.base_model.", others=("module.new_fc",)),
    Layout("the TSM repository", "base_model.", others=("new_fc",)),
)
VIDTL_CHECKPOINT = LAYOUTS[7]


@dataclass(frozen=True)
class Wrapper:
    """A module class that keeps the module it wraps as ``attribute``: the wrapped module's
    tensors are stored with that extra part in their names."""

    origin: str
    attribute: str


WRAPPERS = (Wrapper("TemporalShift of the TSM repository (and of mmaction2)", "net"),)


def under(key: str, module: str) -> bool:
    """Whether ``key`` names ``module`` or a tensor inside it."""
    return key == module or key.startswith(module + ".")


def declared_classifier(model: nn.Module) -> tuple[str, ...]:
    """The modules of ``model`` that its library declares as its classifier; ``()`` for a model
    of no library that declares one."""
    for config in (getattr(model, "pretrained_cfg", None), getattr(model, "default_cfg", None)):
        found = config.get("classifier") if isinstance(config, dict) else None
        if found:
            return (found,) if isinstance(found, str) else tuple(found)
    for cls in type(model).__mro__:
        head = TORCHVISION_CLASSIFIERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if head is not None:
            return (head,)
    return ()


class KeyMap:
    """A checkpoint's keys mapped onto ``model``'s state dict through the declared layouts,
    wrappers and classifier."""

    def __init__(self, model: nn.Module) -> None:
        self.target: dict[str, torch.Tensor] = model.state_dict()
        self.modules = {name for name, _ in model.named_modules()}
        self.classifier = declared_classifier(model)
        # PyTorch's normalisation layers count batches in a buffer that files written before
        # PyTorch 0.4.1 lack: a checkpoint may leave it out.
        self.optional = {f"{name}.num_batches_tracked".lstrip(".")
                         for name, module in model.named_modules()
                         if isinstance(module, nn.modules.batchnorm._NormBase)
                         and module.num_batches_tracked is not None}

    def backbone_name(self, key: str) -> str | None:
        """The model's name for checkpoint tensor ``key``; ``None`` when it has none."""
        for layout in LAYOUTS:
            if key.startswith(layout.prefix):
                name = self._unwrapped(key[len(layout.prefix):])
                if name in self.target:
                    return name
        return None

    def is_classifier(self, key: str) -> bool:
        """Whether ``key`` is of the model's declared classifier or of a part of a layout that
        is not the backbone (the tensors a headless backbone has no place for)."""
        return any(
            any(under(key, other) for other in layout.others)
            or (key.startswith(layout.prefix)
                and any(under(key[len(layout.prefix):], head) for head in self.classifier))
            for layout in LAYOUTS)

    def _unwrapped(self, name: str) -> str:
        """``name`` without the attribute of a declared wrapper, dropped where the part before
        it is a module of the model that has no child of that name."""
        attributes = {wrapper.attribute for wrapper in WRAPPERS}
        parts = name.split(".")
        kept = parts[:1]
        for part in parts[1:-1]:
            path = ".".join(kept)
            if part in attributes and path in self.modules and f"{path}.{part}" not in self.modules:
                continue
            kept.append(part)
        return ".".join([*kept, parts[-1]]) if len(parts) > 1 else name
