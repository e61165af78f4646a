"""The weights a training run starts from: a resumed checkpoint's
(:mod:`vidtl.training.resume_point`), another run's (``init_from=``), or the backbone's
pretrained ones."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from vidtl.inference.checkpoint_model import load_checkpoint
from vidtl.inference.transfer import initialize_from
from vidtl.training.module import VideoClassificationModule
from vidtl.training.resume_point import ResumePoint, check_same_classes

log = logging.getLogger(__name__)


def start_weights(cfg: DictConfig, module: VideoClassificationModule, point: ResumePoint,
                  class_names: list[str]) -> None:
    """The weights the run starts from: a resumed checkpoint's (which must have this data's
    classes), or ``init_from``'s that fit (:mod:`vidtl.inference.transfer`), or the
    backbone's pretrained ones."""
    init_from = cfg.get("init_from")
    if point.path is not None:
        check_same_classes(point, len(class_names))
        if init_from:
            log.info("init_from=%s is not used: the run resumes from %s", init_from, point.path)
        return
    if init_from:
        checkpoint = load_checkpoint(init_from, cfg.get("trusted_targets") or (),
                                     cfg.get("custom_imports") or (), cfg.get("max_checkpoint_gb"))
        initialize_from(module, checkpoint, init_from)
