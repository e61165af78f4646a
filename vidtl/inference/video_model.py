"""A trained checkpoint in your own Python code: ``vidtl.load(path)``, then ``predict``.

```python
import vidtl

# the checkpoint a run evaluated: metrics.json's "evaluated_checkpoint"
model = vidtl.load("logs/train/runs/r1/checkpoints/final.ckpt", custom_imports=["mylab"])
model.module                   # the LightningModule, of the class it was trained with
model.predict("clip.mp4")      # Prediction(classes=[...], probabilities=[...]), top 5
model.predict("clip.mp4").detected  # classes above their thresholds (multi-label, detectors)
model.predict(frames)          # uint8 frames (T, H, W, C), or a batch (B, T, H, W, C)
```

Every input goes through the checkpoint's own preprocessing. A video path is read as
``vidtl-predict`` reads it: the run's sampler, its test views (``num_test_clips`` x
``num_test_crops``), the views' scores averaged. A tensor holds uint8 RGB frames ``(T, H, W, C)``
of any size, the layout decoders return (decord's ``asnumpy()``, PyAV's
``to_ndarray(format="rgb24")``) and the exported model takes; a clip of another length than
the checkpoint's ``num_frames`` is sampled with the run's sampler as in evaluation (segment
centres for TSN sampling, a centred window for dense sampling), then its short side resized and
its centre cropped (the run's evaluation geometry), and normalised with the backbone's mean and
std.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidtl.core.errors import UserError
from vidtl.data.clips.transforms import EvalClipTransform
from vidtl.evaluation.view_scores import aggregate_views, score_views
from vidtl.inference.checkpoint_model import TrainedModel, load_trained_model
from vidtl.inference.file_views import VideoViews
from vidtl.inference.timeline_model import (
    TimelineModel,
    TimelineSource,
    timeline_scores,
    torch_timeline_model,
)
from vidtl.timeline.scoring_loop import WindowScore
from vidtl.training.module import VideoClassificationModule
from vidtl.training.operating_points import detected_classes

VideoInput = str | Path | torch.Tensor | np.ndarray


class VideoInputError(UserError):
    """An input that is neither a video path nor uint8 frames ``(T, H, W, C)``."""


@dataclass(frozen=True)
class Prediction:
    """The ``top_k`` classes of one video, best first, with their probabilities; for a model
    with operating points (multi-label, or a detector of one class), ``detected``: every class
    whose probability reaches its threshold (chosen on validation), most probable first, with
    ``detected_probabilities``."""

    classes: list[str]
    probabilities: list[float]
    detected: list[str] = field(default_factory=list)
    detected_probabilities: list[float] = field(default_factory=list)

    @property
    def top(self) -> str:
        return self.classes[0]


def view_probabilities(module: VideoClassificationModule, views: torch.Tensor, chunk: int,
                       aggregation: str) -> torch.Tensor:
    """Class probabilities ``(B, K)`` of uint8 views ``(B, V, T, C, H, W)`` (on the module's
    device): every view scored, then averaged as ``aggregation`` says."""
    logits = score_views(views.to(module.device), module.score_clips, chunk)
    multilabel = bool(getattr(module, "multilabel", False))
    scores = aggregate_views(logits, aggregation, multilabel)
    return scores.softmax(-1) if aggregation == "logits" and not multilabel else scores


class VideoModel:
    """A trained model with its preprocessing; see the module docstring."""

    def __init__(self, trained: TrainedModel, device: str | torch.device = "cpu") -> None:
        self.trained = trained
        self.device = torch.device(device)
        self.module = trained.module.to(self.device).eval()
        self.pipeline = trained.test_pipeline()
        views = self.pipeline.test_views
        self.num_crops = views.num_crops
        self.eval_transform: EvalClipTransform = self.pipeline.eval_transform

    @property
    def class_names(self) -> list[str]:
        return self.trained.class_names

    @property
    def num_frames(self) -> int:
        return self.trained.num_frames

    def clip_views(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 views ``(V, T, C, H, W)`` of one clip of uint8 frames ``(T, H, W, C)``."""
        clip = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray)
                               else frames)  # a flipped view (BGR to RGB) has negative strides
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise VideoInputError(
                f"expected uint8 RGB frames (T, H, W, 3) or a batch (B, T, H, W, 3), got "
                f"{clip.dtype} {tuple(clip.shape)}")
        if min(clip.shape[:3]) == 0:
            raise VideoInputError(f"expected at least one frame of at least 1x1 pixels, got "
                                  f"shape {tuple(clip.shape)}")
        if len(clip) != self.num_frames:  # the run's sampler, as in evaluation (deterministic)
            clip = clip[torch.from_numpy(self.pipeline.sampler(len(clip), False,
                                                               np.random.default_rng(0)))]
        return torch.stack(self.eval_transform.crops(clip, self.num_crops))

    @torch.inference_mode()
    def probabilities(self, inputs: VideoInput | Sequence[VideoInput]) -> torch.Tensor:
        """Class probabilities ``(N, K)``: one row per video path or clip of ``inputs`` (a
        path, a clip ``(T, H, W, C)``, a batch ``(B, T, H, W, C)``, or a list of these)."""
        views = torch.stack([self._views(item) for item in _items(inputs)])
        return view_probabilities(self.module, views, self.module.view_chunk,
                                  self.module.view_aggregation).cpu()

    def predict(self, inputs: VideoInput | Sequence[VideoInput], top_k: int = 5
                ) -> Prediction | list[Prediction]:
        """The ``top_k`` classes of each input; one :class:`Prediction` for a single path or
        clip ``(T, H, W, C)``, a list for a batch or a list."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise VideoInputError(f"top_k must be a whole number >= 1, got {top_k!r}")
        probabilities = self.probabilities(inputs)
        values, classes = probabilities.topk(min(top_k, len(self.class_names)), dim=-1)
        predictions = []
        for row, (row_values, row_classes) in enumerate(zip(values, classes, strict=True)):
            found = detected_classes(self.module.operating_points, probabilities[row])
            predictions.append(Prediction(
                [self.class_names[c] for c in row_classes.tolist()],
                [round(float(p), 6) for p in row_values.tolist()],
                [self.class_names[c] for c, _ in found], [p for _, p in found]))
        return predictions[0] if _single(inputs) else predictions

    @property
    def thresholds(self) -> dict[str, float]:
        """Each class's threshold (multi-label), or the positive class's (a detector); empty
        for a model without operating points."""
        points = self.module.operating_points
        if points is None:
            return {}
        values = points.thresholds.detach().cpu().tolist()
        if points.multilabel:
            return dict(zip(self.class_names, values, strict=True))
        return {self.class_names[int(points.positive or 0)]: values[0]}

    def timeline(self, source: TimelineSource, window_s: float | None = None,
                 stride_s: float = 1.0, fps: float | None = None,
                 stall_timeout_s: float = 10.0) -> Iterator[WindowScore]:
        """The scores of sliding windows over ``source``, in order, as they are scored: a
        video file, a stream URL (``rtsp://``, ``http(s)://``...), ``"-"`` (stdin), a capture
        device (``/dev/video0``), or an iterable of uint8 RGB frames ``(H, W, 3)`` at ``fps``.
        Windows of ``window_s`` seconds (``None``: the span the checkpoint's sampling covers)
        every ``stride_s`` seconds are sampled and cropped as in evaluation, from one
        sequential pass over the frames (see docs/timeline.md).

        ```python
        for window in model.timeline("match.mp4", stride_s=0.5):
            print(window.start_s, model.class_names[int(window.probabilities.argmax())])
        ```
        """
        return timeline_scores(self.timeline_model(), source, window_s, stride_s, fps,
                               stall_timeout_s=stall_timeout_s)

    def timeline_model(self) -> TimelineModel:
        """The model's scorer, classes and evaluation geometry for timelines."""
        return torch_timeline_model(self.trained)

    def _views(self, item: VideoInput) -> torch.Tensor:
        if isinstance(item, (str, Path)):
            _, views, error = VideoViews.from_pipeline([Path(item)], self.pipeline)[0]
            if views is None:
                raise VideoInputError(f"{item}: {error}")
            return views
        return self.clip_views(item)


# What an array input is, declared by its number of dimensions (a user's array carries no
# type): one clip of frames, or a batch of clips.
ARRAY_INPUTS = {4: "clip (T, H, W, 3)", 5: "batch (B, T, H, W, 3)"}


def _array_kind(inputs: torch.Tensor | np.ndarray) -> str:
    kind = ARRAY_INPUTS.get(inputs.ndim)
    if kind is None:
        raise VideoInputError(f"expected uint8 frames: a {' or a '.join(ARRAY_INPUTS.values())}"
                              f", got shape {tuple(inputs.shape)}")
    return kind


def _single(inputs: Any) -> bool:
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        return _array_kind(inputs) == ARRAY_INPUTS[4]
    return isinstance(inputs, (str, Path))


def _items(inputs: Any) -> list[VideoInput]:
    if _single(inputs):
        return [inputs]
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        items = list(inputs)
        if not items:
            raise VideoInputError(f"an empty batch, shape {tuple(inputs.shape)}: no input to "
                                  f"predict")
        return items
    items = list(inputs)
    if not items:
        raise VideoInputError("no input to predict")
    return items


def load(path: str | Path, custom_imports: Sequence[str] = (), trusted_targets: Sequence[str] = (),
         device: str | torch.device = "auto", max_checkpoint_gb: float | None = None,
         **module_options: Any) -> VideoModel:
    """The checkpoint ``path`` as a :class:`VideoModel`: its LightningModule rebuilt in the
    class it was trained with (``custom_imports``: your modules it names, imported and
    trusted, as in training), weights loaded safely, in eval mode on ``device`` (``auto``: the
    GPU when there is one). A checkpoint is untrusted input: see docs/safety.md
    (``max_checkpoint_gb`` caps what it may expand to when loaded). ``module_options`` go to
    the module (``view_aggregation``...)."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    trained = load_trained_model(path, trusted_targets=trusted_targets,
                                 custom_imports=custom_imports,
                                 max_checkpoint_gb=max_checkpoint_gb, **module_options)
    return VideoModel(trained, device)
