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


def load_onnx_model(path: str | Path, threads: int | None = None) -> TimelineModel:
    """The exported model ``path`` as a :class:`TimelineModel` run by onnxruntime with
    ``threads`` intra-op threads (``None``: its default)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ExportedModelError(f"onnx_path {path}: no such file (write one with vidtl-export "
                                 f"format=onnx)")
    if not is_exported_model(path):
        raise ExportedModelError(f"{path}: not a model vidtl-export wrote ({sidecar_path(path)} "
                                 f"must describe it and record its SHA-256)")
    description = json.loads(read_bytes(sidecar_path(path), 64 * 2**20))
    if description.get("format") != "onnx":
        raise ExportedModelError(f"{path}: exported as {str(description.get('format'))[:20]!r}"
                                 f", not onnx")
    names = description.get("class_names")
    if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES or not all(
            isinstance(n, str) and n.isprintable() for n in names):
        raise ExportedModelError(f"{sidecar_path(path)}: class_names must be a list of "
                                 f"printable names")
    sampling = description.get("clip_sampling")
    if not isinstance(sampling, dict):
        raise ExportedModelError(f"{sidecar_path(path)}: no clip_sampling (export it again "
                                 f"with vidtl-export 0.3 or later)")
    sampler_name = sampling.get("sampler")
    if not isinstance(sampler_name, str) or sampler_name not in SAMPLERS:
        raise ExportedModelError(f"{sidecar_path(path)}: its sampler must be one of "
                                 f"{sorted(SAMPLERS)} for runtime=onnx (a sampler of your own "
                                 f"runs with runtime=torch), got {str(sampler_name)[:60]!r}")
    frames = _whole(sampling.get("num_frames"), 1, MAX_FRAMES, "num_frames", path)
    interval = _whole(sampling.get("frame_interval", 1), 1, MAX_FRAMES, "frame_interval", path)
    crop = _whole(sampling.get("crop_size"), 1, MAX_SIDE, "crop_size", path)
    short = _whole(sampling.get("short_side"), 1, MAX_SIDE, "short_side", path)
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(INSTALL) from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])

    def score(clips: torch.Tensor) -> torch.Tensor:
        batch = clips.permute(0, 1, 3, 4, 2).contiguous().numpy()  # (B, T, H, W, C)
        logits = torch.from_numpy(np.asarray(session.run(["logits"], {"clips": batch})[0]))
        return logits.float().softmax(-1)

    return TimelineModel(score, list(names), SAMPLERS.get(sampler_name)(frames, interval),
                         EvalClipTransform(crop, short), runtime="onnx")
