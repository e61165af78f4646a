"""A trained classifier as a deployable file: TorchScript or ONNX, uint8 clips in, logits out.

The exported graph includes the preprocessing: it takes uint8 clips ``(B, T, H, W, C)`` (RGB,
as decoders return frames), scales and normalises them with the backbone's mean and std, and
returns class logits ``(B, num_classes)``. A JSON file beside it names the classes and the
expected input, so a deployment cannot get the preprocessing or the label order wrong.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidtl.core.atomic import atomic_path
from vidtl.core.own_files import check_replaceable, file_sha256, json_with_keys
from vidtl.core.safe_files import read_bytes
from vidtl.models.classifier import VideoClassifier
from vidtl.models.lora import merge_lora

log = logging.getLogger(__name__)
FORMATS = ("onnx", "torchscript")


class UInt8VideoClassifier(nn.Module):
    """uint8 ``(B, T, H, W, C)`` -> float, scaled to [0, 1], standardised -> ``classifier``
    (any module mapping normalised clips ``(B, T, C, H, W)`` to logits: a
    :class:`VideoClassifier`, or a LightningModule whose ``forward`` adds its own steps)."""

    def __init__(self, classifier: nn.Module, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        super().__init__()
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, -1, 1, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        frames = clips.permute(0, 1, 4, 2, 3).float() / 255.0
        return self.classifier((frames - self.mean) / self.std)


class ForwardOf(nn.Module):
    """``owner.forward`` as a plain module holding ``classifier``: what tracing can walk when
    the owner cannot be (a LightningModule's ``trainer`` property raises outside a Trainer).
    The owner's own tensors (a subclass's extra parameters) enter the graph as constants."""

    def __init__(self, owner: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        self.__dict__["owner_forward"] = owner.forward  # not a submodule: not walked

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.owner_forward(clips)


def sidecar_path(path: Path) -> Path:
    """Where the description of an exported model goes: ``<file>.json``."""
    return path.with_name(path.name + ".json")


is_description = json_with_keys(("format", "class_names", "preprocessing_included", "sha256"))


def is_exported_model(path: Path) -> bool:
    """A model file that vidtl-export wrote: its description beside it records its SHA-256."""
    description = sidecar_path(path)
    if not is_description(description):
        return False
    recorded = json.loads(read_bytes(description, 64 * 2**20)).get("sha256")
    return recorded == file_sha256(path)


def describe_export(format: str, class_names: list[str], num_frames: int, crop_size: int,
                    mean: tuple[float, ...], std: tuple[float, ...],
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON description written beside an exported model."""
    return {
        "format": format,
        "input": {"name": "clips", "dtype": "uint8", "layout": "B,T,H,W,C (RGB)",
                  "shape": ["batch", num_frames, crop_size, crop_size, 3]},
        "output": {"name": "logits", "shape": ["batch", len(class_names)],
                   "note": "raw scores; a sigmoid per class gives probabilities"
                   if (extra or {}).get("task") == "multilabel"
                   else "raw scores; softmax gives probabilities"},
        "class_names": list(class_names),
        "preprocessing_included": {"scale": "1/255", "mean": list(mean), "std": list(std)},
        **(extra or {}),
    }


def export_classifier(classifier: VideoClassifier, class_names: list[str], num_frames: int,
                      crop_size: int, path: str | Path, format: str,
                      extra: dict[str, Any] | None = None,
                      scorer: nn.Module | None = None) -> Path:
    """Write ``classifier`` (with its preprocessing) to ``path`` in ``format`` and its
    description to ``<path>.json``; return ``path``. ``scorer``, when given, is what is
    exported instead: a module holding ``classifier`` whose ``forward`` gives the logits of
    normalised clips (a LightningModule subclass with its own steps). LoRA layers are merged
    into ``classifier``'s weights first (in place). Both files appear complete or not at all
    (written under temporary names, then renamed), and replace only an earlier export."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise ImportError(f"format=onnx needs the onnx and onnxscript packages "
                              f"(pip install 'vidtl[export]'): {error}") from None
    path = Path(path).expanduser()
    check_replaceable(sidecar_path(path), is_description, "a vidtl-export description")
    check_replaceable(path, is_exported_model,
                      "a model exported by vidtl-export (with its .json description)")
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = merge_lora(classifier)  # LoRA folded into the weights: plain layers, same output
    if merged:
        log.info("merged %d LoRA layers into their weights before export", merged)
    config = classifier.backbone.data_config
    if scorer is not None:
        scorer.requires_grad_(False)  # its own tensors become constants of the graph
    scoring = classifier if scorer is None else ForwardOf(scorer, classifier)
    model = UInt8VideoClassifier(scoring, config.mean, config.std).eval()
    example = torch.randint(0, 256, (2, num_frames, crop_size, crop_size, 3), dtype=torch.uint8)
    description = describe_export(format, class_names, num_frames, crop_size, config.mean,
                                  config.std, extra)
    with atomic_path(path) as partial, atomic_path(sidecar_path(path)) as sidecar_partial:
        with torch.no_grad():
            if format == "torchscript":
                with warnings.catch_warnings():  # the clip length is fixed on purpose
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    traced = torch.jit.trace(model, example, check_trace=False)
                traced.save(str(partial))
            else:
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(model, (example,), str(partial), input_names=["clips"],
                                  output_names=["logits"], dynamic_shapes=({0: batch},),
                                  dynamo=True, external_data=False)
        description["sha256"] = file_sha256(partial)  # what marks the model file as vidtl's
        sidecar_partial.write_text(json.dumps(description, indent=2) + "\n")
    return path
