"""Configs saved in checkpoints of earlier vidtl versions, brought to this version's names."""

from __future__ import annotations

from typing import Any

# _target_ paths that moved in vidtl 0.2.
RENAMED_TARGETS = {
    "vidtl.data.synthetic.SyntheticVideoSpec": "vidtl.data.tools.synthetic.SyntheticVideoSpec",
    "vidtl.models.module.VideoClassificationModule":
        "vidtl.training.module.VideoClassificationModule",
    "vidtl.models.schedules.cosine_with_warmup": "vidtl.training.lr_schedules.cosine_with_warmup",
    "vidtl.models.schedules.constant": "vidtl.training.lr_schedules.constant",
}


def upgrade_config(config: Any) -> Any:
    """``config`` (plain containers) with moved ``_target_`` paths renamed, the data
    module's own ``_target_`` (0.1 built it by Hydra; 0.2's composition root builds it)
    dropped, and ``model.label_smoothing`` (up to 0.3) moved to ``module.label_smoothing``."""
    if isinstance(config, list):
        return [upgrade_config(value) for value in config]
    if not isinstance(config, dict):
        return config
    upgraded = {key: upgrade_config(value) for key, value in config.items()}
    target = upgraded.get("_target_")
    if target == "vidtl.data.datamodule.VideoDataModule":
        del upgraded["_target_"]
    elif target in RENAMED_TARGETS:
        upgraded["_target_"] = RENAMED_TARGETS[target]
    model = upgraded.get("model")
    if isinstance(model, dict) and "label_smoothing" in model:
        smoothing = model.pop("label_smoothing")
        if not isinstance(upgraded.get("module"), dict):
            upgraded["module"] = {}
        upgraded["module"].setdefault("label_smoothing", smoothing)
    return upgraded
