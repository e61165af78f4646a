"""``vidtl-export ckpt_path=... format=onnx|torchscript output=FILE``: a deployable model.

The exported model takes uint8 clips ``(B, T, H, W, C)`` of the size the checkpoint was trained
on and does its own normalisation; ``FILE.json`` beside it lists the class names, the input
shape and how clips were sampled and cropped (:mod:`vidtl.inference.export`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.core.errors import UserError
from vidtl.core.settings import settings_from
from vidtl.core.version import __version__
from vidtl.data.clips.clip_settings import ClipSettings
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.inference.export import FORMATS, export_classifier, sidecar_path
from vidtl.training.operating_points import describe_operating_points

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> Path:
    """Export ``cfg.ckpt_path``; return the written model file."""
    if cfg.format not in FORMATS:
        raise UserError(f"format must be one of {FORMATS}, got {cfg.format!r}")
    model = load_trained_model(cfg.ckpt_path, trusted_targets=cfg.get("trusted_targets") or (),
                               custom_imports=cfg.get("custom_imports") or (),
                               max_checkpoint_gb=cfg.get("max_checkpoint_gb"))
    clip = settings_from(ClipSettings, model.config.data)  # a missing key: its default
    evaluation = model.test_pipeline().eval_transform  # the run's own clip geometry
    crop_size = evaluation.crop_size
    clip_sampling = {
        "num_frames": model.num_frames,
        "sampler": OmegaConf.to_container(clip.sampler) if OmegaConf.is_config(clip.sampler)
        else clip.sampler,
        "frame_interval": clip.frame_interval,
        "short_side": evaluation.short_side,
        "crop_size": crop_size,
        "how": "sample num_frames frames with the sampler, resize the short side to short_side, "
               "take the centre crop_size square",
    }
    path = export_classifier(
        model.module.classifier, model.class_names, model.num_frames, crop_size, cfg.output,
        cfg.format, extra={"clip_sampling": clip_sampling,
                           "checkpoint": str(Path(cfg.ckpt_path).expanduser().resolve()),
                           "vidtl_version": __version__,
                           **describe_operating_points(model.module.operating_points,
                                                       model.module.task, model.class_names)},
        scorer=model.module)  # the checkpoint's own class: a subclass's forward is kept
    log.info("exported %s to %s (classes and input in %s)", cfg.format, path, sidecar_path(path))
    print(path, flush=True)
    return path


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
