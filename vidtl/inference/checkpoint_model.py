"""A trained model rebuilt from a vidtl checkpoint, for evaluation, prediction and export.

A checkpoint is loaded with ``weights_only=True`` (tensors and plain containers, no pickled
code), and its saved ``data``, ``model`` and ``module`` configs, the only parts vidtl rebuilds
objects from, are checked by :mod:`vidtl.core.trusted_targets` before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.config_upgrade import upgrade_config
from vidtl.assembly.data import clip_pipeline
from vidtl.assembly.model import ModuleFactory, build_module
from vidtl.core.custom_imports import import_custom
from vidtl.core.errors import UserError
from vidtl.core.trusted_targets import check_targets
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.training.module import VideoClassificationModule


class CheckpointMismatchError(UserError):
    """The checkpoint cannot be used for what was asked (not vidtl's, other classes...)."""


REBUILT_SUBTREES = ("data", "model", "module")


class UnreadableCheckpointError(UserError):
    """The file is not a checkpoint torch can read safely (truncated, foreign, pickled code)."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``, with a one-line error naming the file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableCheckpointError(
            f"{path} cannot be read as a checkpoint with weights_only=True ({first[:200]}); it is "
            f"truncated, not a torch file, or holds pickled objects other than tensors") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f"{path} holds a {type(checkpoint).__name__}, not a "
                                      f"checkpoint dictionary")
    return checkpoint


def load_checkpoint(path: str | Path, trusted_targets: Sequence[str] = (),
                    custom_imports: Sequence[str] = ()) -> dict[str, Any]:
    """A vidtl checkpoint, loaded safely (tensors and plain containers only), whose saved config
    names only trusted ``_target_`` objects: vidtl's, or under the user's own prefixes
    (``trusted_targets``, and the modules of ``custom_imports``, which are imported first)."""
    trusted = [*trusted_targets, *import_custom(custom_imports)]
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = read_checkpoint(path)
    if "vidtl" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointMismatchError(
            f"{path} is not a vidtl checkpoint (no 'vidtl' record); it must come from vidtl-train"
        )
    config = upgrade_config(OmegaConf.to_container(OmegaConf.create(checkpoint["vidtl"]["config"]),
                                                   resolve=True))
    checkpoint["vidtl"]["config"] = config  # resolved: what is checked is what is built
    check_targets({k: config.get(k) for k in REBUILT_SUBTREES}, str(path), trusted)
    return checkpoint


@dataclass
class TrainedModel:
    """The module (in eval mode), the run's resolved config and its class names."""

    module: VideoClassificationModule
    config: DictConfig
    class_names: list[str]

    @property
    def num_frames(self) -> int:
        return int(self.config.data.num_frames)

    def test_pipeline(self, num_clips: int | None = None,
                      num_crops: int | None = None) -> ClipPipeline:
        """The run's clip pipeline for video files outside its dataset (decoded, whatever
        ``data.source`` the run read), with the run's test protocol unless ``num_clips`` or
        ``num_crops`` replace it."""
        pipeline = clip_pipeline(self.config.data, source="video")
        views = pipeline.test_views
        return pipeline.with_test_views(num_clips or views.num_clips, num_crops or views.num_crops)


def load_trained_model(path: str | Path, num_frames: int | None = None,
                       trusted_targets: Sequence[str] = (), custom_imports: Sequence[str] = (),
                       **module_options: Any) -> TrainedModel:
    """Rebuild the LightningModule of checkpoint ``path`` (its own class: vidtl's or the
    subclass it was trained with) for ``num_frames`` frames per clip (by default those it was
    trained with), with its weights. ``custom_imports`` are the user's modules to import and
    trust (as in training), ``trusted_targets`` further prefixes of the user's code the saved
    config may name; ``module_options`` go to the module (view aggregation and chunk)."""
    return trained_model_from(load_checkpoint(path, trusted_targets, custom_imports),
                              num_frames, **module_options)


def trained_model_from(checkpoint: dict[str, Any], num_frames: int | None = None,
                       **module_options: Any) -> TrainedModel:
    """:func:`load_trained_model` of a checkpoint loaded (and checked) by
    :func:`load_checkpoint`."""
    config = OmegaConf.create(checkpoint["vidtl"]["config"])  # upgraded by load_checkpoint
    class_names = [str(name) for name in checkpoint["vidtl"]["class_names"]]
    frames = num_frames or int(config.data.num_frames)
    module = build_module(config.model, class_names, frames, pretrained=False,
                          module_factory=saved_module_class(config),
                          class_weights=None,  # computed from the training set in training only
                          **module_options)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        written_by = checkpoint["vidtl"].get("module_class", "?")
        raise CheckpointMismatchError(
            f"the checkpoint's weights do not fit {type(module).__qualname__} (the checkpoint "
            f"was written by {written_by}): {str(error).splitlines()[0]}") from None
    return TrainedModel(module.eval(), config, class_names)


def saved_module_class(config: DictConfig) -> ModuleFactory:
    """The LightningModule of the saved ``module`` config (its class, vidtl's or a subclass,
    with its saved options: loss, mixing and the subclass's own), checked as trusted by
    :func:`load_checkpoint`; vidtl's class (with the saved options) when it names none."""
    module_cfg = OmegaConf.to_container(config.get("module") or OmegaConf.create({}))
    module_cfg.setdefault("_target_", VIDTL_MODULE)
    return instantiate(module_cfg, _partial_=True)


VIDTL_MODULE = f"{VideoClassificationModule.__module__}.{VideoClassificationModule.__qualname__}"
