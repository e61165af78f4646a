"""Starting a run from another vidtl run (``vidtl-train init_from=PATH``): everything that fits
is loaded, the classifier head is new, and one line says what was loaded and what was not.

The other run's checkpoint is read as any checkpoint is (:func:`load_checkpoint`: safely, its
config checked). Its tensors go into this run's freshly built model where the model has a
tensor of that name and shape: the backbone, the temporal module, the adapters and LoRA layers
inside the backbone. The classifier head is the one module the classifier declares as its head
(``VideoClassifier.head``): its tensors are never loaded, whatever the class counts, since the
classes are this run's. Nothing is decided from a tensor's name otherwise: a tensor the model
lacks, or of another shape, is dropped, and the report says which and why; a ViT's position
embeddings are resampled to this run's image size first (:mod:`vidtl.models.resized_weights`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidtl.models.resized_weights import fit_weight
from vidtl.training.module import VideoClassificationModule

log = logging.getLogger(__name__)


@dataclass
class TransferReport:
    """What :func:`transfer_weights` loaded (per part of the model), dropped (with the reason)
    and left at its initialisation."""

    loaded: Counter = field(default_factory=Counter)
    dropped: dict[str, str] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)

    def line(self, origin: str) -> str:
        """The report as one line."""
        parts = ", ".join(f"{part} {count}" for part, count in sorted(self.loaded.items()))
        reasons = "; ".join(f"{count} {reason}"
                            for reason, count in Counter(self.dropped.values()).items())
        left = ", ".join(self.left[:3]) + (", ..." if len(self.left) > 3 else "")
        return (f"init_from {origin}: loaded {sum(self.loaded.values())} tensors ({parts}); "
                f"dropped {len(self.dropped)}" + (f" ({reasons})" if reasons else "") +
                f"; {len(self.left)} of this model's tensors start from their initialisation"
                + (f" ({left})" if left else ""))


def _names_under(module: torch.nn.Module, part: torch.nn.Module) -> tuple[str, set[str]]:
    """The name of submodule ``part`` inside ``module``, and its state-dict keys there."""
    prefix = next(name for name, child in module.named_modules() if child is part)
    return prefix, {f"{prefix}.{key}" for key in part.state_dict()}


def transfer_weights(module: VideoClassificationModule,
                     state_dict: dict[str, torch.Tensor]) -> TransferReport:
    """Load into ``module`` every tensor of ``state_dict`` that fits it, the head's and those
    of the other run's classes (its thresholds and positive weights) aside."""
    _, head = _names_under(module, module.classifier.head)
    per_class = {key for key in module.state_dict()  # the thresholds, pos_weight: its classes'
                 if key.startswith("operating_points.") or key == "pos_weight"}
    head = head | per_class
    parts = {name: _names_under(module, child)[1]
             for name, child in module.classifier.named_children()}
    target = module.state_dict()
    report, loaded = TransferReport(), {}
    for key, value in state_dict.items():
        if key in head or key.startswith("operating_points.") or key == "pos_weight":
            report.dropped[key] = ("of the classifier head, new for this run's classes"
                                   if key in head - per_class
                                   else "of the other run's classes (thresholds, positive "
                                        "weights), new for this run's")
        elif key not in target:
            report.dropped[key] = "this model does not have"
        elif target[key].shape != value.shape and (
                value := fit_weight(module, key, value, target[key].shape)) is None:
            report.dropped[key] = "of another shape than this model's"
        else:
            loaded[key] = value
            part = next((name for name, keys in parts.items() if key in keys), "other")
            report.loaded[part] += 1
    report.left = [key for key in target if key not in loaded and key not in head]
    module.load_state_dict(loaded, strict=False)
    return report


def initialize_from(module: VideoClassificationModule, checkpoint: dict[str, Any],
                    origin: str | Path) -> TransferReport:
    """:func:`transfer_weights` of a checkpoint loaded by
    :func:`~vidtl.inference.checkpoint_model.load_checkpoint`, logged as one line."""
    report = transfer_weights(module, checkpoint["state_dict"])
    log.info("%s", report.line(str(origin)))
    return report
