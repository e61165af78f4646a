"""A trained model rebuilt from a vidtl checkpoint, for evaluation, prediction and export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.config_upgrade import upgrade_config
from vidtl.assembly.data import clip_pipeline
from vidtl.assembly.model import build_module
from vidtl.core.errors import UserError
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.training.module import VideoClassificationModule


class CheckpointMismatchError(UserError):
    """The checkpoint cannot be used for what was asked (not vidtl's, other classes...)."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A vidtl checkpoint, loaded safely (tensors and plain containers only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "vidtl" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointMismatchError(
            f"{path} is not a vidtl checkpoint (no 'vidtl' record); it must come from vidtl-train"
        )
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
                       **module_options: Any) -> TrainedModel:
    """Rebuild the classifier of checkpoint ``path`` (for ``num_frames`` frames per clip; by
    default those it was trained with) with its weights; ``module_options`` go to
    :class:`VideoClassificationModule` (view aggregation and chunk)."""
    return trained_model_from(load_checkpoint(path), num_frames, **module_options)


def trained_model_from(checkpoint: dict[str, Any], num_frames: int | None = None,
                       **module_options: Any) -> TrainedModel:
    """:func:`load_trained_model` of an already loaded checkpoint."""
    config = OmegaConf.create(upgrade_config(checkpoint["vidtl"]["config"]))
    class_names = [str(name) for name in checkpoint["vidtl"]["class_names"]]
    frames = num_frames or int(config.data.num_frames)
    module = build_module(config.model, class_names, frames, pretrained=False, **module_options)
    module.load_state_dict(checkpoint["state_dict"])
    return TrainedModel(module.eval(), config, class_names)
