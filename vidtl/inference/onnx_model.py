"""``runtime=onnx``: a timeline scored by onnxruntime from the file ``vidtl-export`` wrote.

The exported file holds the network and its normalisation; its description (``FILE.json``)
holds the class names and how clips were sampled and cropped. Both are input: the description
is read only when it records the model file's SHA-256 (what vidtl-export writes), its class
names must be printable strings, its sampler one vidtl registers and its sizes within the
limits a checkpoint's are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidtl.core.errors import UserError
from vidtl.core.safe_files import read_bytes
from vidtl.data.clips.pipeline import MAX_FRAMES, MAX_SIDE
from vidtl.data.clips.sampling import SAMPLERS
from vidtl.data.clips.transforms import EvalClipTransform
from vidtl.inference.checkpoint_model import MAX_CLASSES
from vidtl.inference.export import is_exported_model, sidecar_path
from vidtl.inference.timeline_model import TimelineModel

INSTALL = "runtime=onnx needs onnxruntime: pip install 'vidtl[export]'"


class ExportedModelError(UserError):
    """A file that is not a model vidtl-export wrote, or whose description is not plain."""


def _whole(value: Any, low: int, high: int, key: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ExportedModelError(f"{sidecar_path(path)}: {key} must be a whole number from "
                                 f"{low} to {high}, got {str(value)[:40]!r}")
    return value


def read_description(path: Path) -> dict[str, Any]:
    """The checked description of the exported model ``path``: its class names and clip
    geometry (see the module docstring)."""
    if not path.is_file():
        raise ExportedModelError(f"onnx_path {path}: no such file (write one with vidtl-export "
                                 f"format=onnx)")
    try:
        ours = is_exported_model(path)
        description = json.loads(read_bytes(sidecar_path(path), 64 * 2**20)) if ours else {}
    except (OSError, ValueError, RecursionError, UserError):
        ours = False
    if not ours or not isinstance(description, dict):
        raise ExportedModelError(f"{path}: not a model vidtl-export wrote ({sidecar_path(path)} "
                                 f"must describe it and record its SHA-256)")
    if description.get("format") != "onnx":
        raise ExportedModelError(f"{path}: exported as {str(description.get('format'))[:20]!r}"
                                 f", not onnx")
    names = description.get("class_names")
    if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES or not all(
            isinstance(n, str) and n.isprintable() for n in names) or len(set(names)) != len(
            names):
        raise ExportedModelError(f"{sidecar_path(path)}: class_names must be a list of "
                                 f"printable names, each once")
    sampling = description.get("clip_sampling")
    if not isinstance(sampling, dict):
        raise ExportedModelError(f"{sidecar_path(path)}: no clip_sampling (export it again "
                                 f"with vidtl-export 0.3 or later)")
    sampler = sampling.get("sampler")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ExportedModelError(f"{sidecar_path(path)}: its sampler must be one of "
                                 f"{sorted(SAMPLERS)} for runtime=onnx (a sampler of your own "
                                 f"runs with runtime=torch), got {str(sampler)[:60]!r}")
    return {"class_names": names, "sampler": sampler,
            "thresholds": described_thresholds(description, names, path),
            "multilabel": description.get("task") == "multilabel",
            "num_frames": _whole(sampling.get("num_frames"), 1, MAX_FRAMES, "num_frames", path),
            "frame_interval": _whole(sampling.get("frame_interval", 1), 1, MAX_FRAMES,
                                     "frame_interval", path),
            "crop_size": _whole(sampling.get("crop_size"), 1, MAX_SIDE, "crop_size", path),
            "short_side": _whole(sampling.get("short_side"), 1, MAX_SIDE, "short_side", path)}


def described_thresholds(description: dict[str, Any], names: list[str], path: Path
                         ) -> torch.Tensor | None:
    """The per-class thresholds of the description, checked: a multi-label model's
    (``task``: ``multilabel``; one probability per class name), a detector's
    (``positive_class`` and ``threshold``; the other classes ``inf``), else ``None``."""
    task = description.get("task", "single_label")
    if task == "single_label":
        if "thresholds" in description:
            raise ExportedModelError(f"{sidecar_path(path)}: per-class thresholds belong to "
                                     f"task multilabel, the description says {task}")
        return _detector_thresholds(description, names, path)
    if "positive_class" in description or "threshold" in description:
        raise ExportedModelError(f"{sidecar_path(path)}: a positive_class and threshold belong "
                                 f"to a single-label detector, the description says "
                                 f"{str(task)[:20]!r}")
    thresholds = description.get("thresholds")
    if task != "multilabel" or not isinstance(thresholds, dict) or set(thresholds) != set(names):
        raise ExportedModelError(f"{sidecar_path(path)}: task must be single_label or "
                                 f"multilabel, a multi-label model's thresholds one per class "
                                 f"name")
    values = [thresholds[name] for name in names]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
               for v in values):
        raise ExportedModelError(f"{sidecar_path(path)}: thresholds must be probabilities in "
                                 f"[0, 1]")
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


def _detector_thresholds(description: dict[str, Any], names: list[str], path: Path
                         ) -> torch.Tensor | None:
    positive, threshold = description.get("positive_class"), description.get("threshold")
    if positive is None and threshold is None:
        return None
    if positive not in names or isinstance(threshold, bool) or not isinstance(
            threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ExportedModelError(f"{sidecar_path(path)}: a detector's positive_class must be "
                                 f"one of its class names and its threshold a probability in "
                                 f"[0, 1]")
    found = torch.full((len(names),), float("inf"))
    found[names.index(positive)] = float(threshold)
    return found


def check_graph(session: Any, geometry: dict[str, Any], path: Path) -> None:
    """The graph's input and output shapes agree with its description: clips
    ``(batch, T, crop, crop, 3)`` in, one logit per class name out."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    expected_in = [geometry["num_frames"], geometry["crop_size"], geometry["crop_size"], 3]
    expected_out = len(geometry["class_names"])
    shape_in = list(inputs[0].shape[1:]) if len(inputs) == 1 else None
    shape_out = list(outputs[0].shape[1:]) if len(outputs) == 1 else None
    if inputs and inputs[0].name != "clips" or shape_in != expected_in:
        raise ExportedModelError(f"{path}: the graph takes {shape_in} clips, its description "
                                 f"says {expected_in} (num_frames, crop_size, crop_size, 3)")
    if outputs and outputs[0].name != "logits" or shape_out != [expected_out]:
        raise ExportedModelError(f"{path}: the graph gives {shape_out} logits, its description "
                                 f"names {expected_out} classes")


def load_onnx_model(path: str | Path, threads: int | None = None) -> TimelineModel:
    """The exported model ``path`` as a :class:`TimelineModel` run by onnxruntime with
    ``threads`` intra-op threads (``None``: its default)."""
    path = Path(path).expanduser()
    geometry = read_description(path)
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(INSTALL) from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime's own error types
        raise ExportedModelError(f"{path}: onnxruntime cannot load it: "
                                 f"{' '.join(str(error).split())[:200]}") from None
    check_graph(session, geometry, path)
    multilabel = geometry["multilabel"]

    def score(clips: torch.Tensor) -> torch.Tensor:
        batch = clips.permute(0, 1, 3, 4, 2).contiguous().numpy()  # (B, T, H, W, C)
        logits = torch.from_numpy(np.asarray(session.run(["logits"], {"clips": batch})[0]))
        return logits.float().sigmoid() if multilabel else logits.float().softmax(-1)

    sampler = SAMPLERS.get(geometry["sampler"])(geometry["num_frames"],
                                                geometry["frame_interval"])
    return TimelineModel(score, list(geometry["class_names"]), sampler,
                         EvalClipTransform(geometry["crop_size"], geometry["short_side"]),
                         runtime="onnx", thresholds=geometry["thresholds"])
