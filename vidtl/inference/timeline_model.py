"""What a timeline needs of a trained model: its scorer, its classes and its clip geometry.

:class:`TimelineModel` is built from a checkpoint (``runtime=torch``: the LightningModule, its
sampler and evaluation crop) or from a file ``vidtl-export`` wrote (``runtime=onnx``: see
:mod:`vidtl.inference.onnx_model`). :func:`timeline_scores` runs it over a source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidtl.core.errors import UserError
from vidtl.data.clips.sampling import FrameSampler
from vidtl.data.clips.transforms import EvalClipTransform
from vidtl.evaluation.view_scores import aggregate_views, score_views
from vidtl.inference.checkpoint_model import TrainedModel
from vidtl.timeline.frame_streams import ArrayFrameStream, FrameStream, PyAVFrameStream, SourceInfo
from vidtl.timeline.scoring_loop import ClipScorer, TimelineStats, WindowScore, score_windows
from vidtl.timeline.window_plan import WindowPlan, default_window_s
from vidtl.training.module import VideoClassificationModule
from vidtl.training.operating_points import class_thresholds

RUNTIMES = ("torch", "onnx")
TimelineSource = str | Path | Iterable[np.ndarray]


@dataclass(frozen=True)
class TimelineModel:
    """A scorer of uint8 clips ``(B, T, C, H, W)`` giving probabilities ``(B, K)``, the
    names of the ``K`` classes, and the evaluation's sampler and crop. ``thresholds`` ``(K,)``:
    the per-class thresholds of a model with operating points (a multi-label model, whose
    scores are sigmoids, or a detector of one class, the others at ``inf``): segments are then
    the spans at or above them; ``None``: one class at a time, the most probable."""

    scorer: ClipScorer
    class_names: list[str]
    sampler: FrameSampler
    eval_transform: EvalClipTransform
    runtime: str = "torch"
    thresholds: torch.Tensor | None = None

    def frame_transform(self, frame: np.ndarray) -> torch.Tensor:
        """One RGB frame ``(H, W, 3)`` as the evaluation crops it: uint8 ``(C, S, S)``."""
        return self.eval_transform.crops(frame[None], 1)[0][0]


def torch_scorer(module: VideoClassificationModule) -> ClipScorer:
    """The module's probabilities of clips, one view each (its evaluation's scoring)."""
    @torch.inference_mode()
    def score(clips: torch.Tensor) -> torch.Tensor:
        logits = score_views(clips.unsqueeze(1).to(module.device), module.score_clips,
                             module.view_chunk)
        multilabel = bool(getattr(module, "multilabel", False))
        scores = aggregate_views(logits, module.view_aggregation, multilabel)
        return (scores.softmax(-1) if module.view_aggregation == "logits" and not multilabel
                else scores)
    return score


def torch_timeline_model(trained: TrainedModel) -> TimelineModel:
    """A checkpoint's module (on its device) with its sampler and evaluation crop."""
    pipeline = trained.test_pipeline(1, 1)
    return TimelineModel(torch_scorer(trained.module), trained.class_names, pipeline.sampler,
                         pipeline.eval_transform,
                         thresholds=class_thresholds(trained.module.operating_points))


def frame_stream(source: TimelineSource, fps: float | None, decode_threads: int,
                 stall_timeout_s: float, live: bool | None = None) -> FrameStream:
    """The frames of ``source``: a file path, a stream URL, ``-`` (stdin), a capture device,
    or an iterable of uint8 frames ``(H, W, 3)`` at ``fps``; ``live``: see
    :class:`~vidtl.timeline.frame_streams.PyAVFrameStream`."""
    if isinstance(source, (str, Path)):
        return PyAVFrameStream(str(source), decode_threads, stall_timeout_s, stall_timeout_s,
                               live)
    if fps is None:
        raise UserError("frames given as arrays need their frame rate: fps=...")
    return ArrayFrameStream(source, fps)


def timeline_scores(model: TimelineModel, source: TimelineSource, window_s: float | None = None,
                    stride_s: float = 1.0, fps: float | None = None, decode_threads: int = 0,
                    stall_timeout_s: float = 10.0, stats: TimelineStats | None = None,
                    on_open: Callable[[SourceInfo, WindowPlan], None] | None = None,
                    live: bool | None = None,
                    should_stop: Callable[[], bool] | None = None) -> Iterator[WindowScore]:
    """The window scores of ``source`` in order, as they are scored (see
    :func:`vidtl.timeline.scoring_loop.score_windows`); ``window_s=None``: the span the
    model's sampling covers (:func:`~vidtl.timeline.window_plan.default_window_s`); ``live``
    (``None``: by the kind of source) lets windows be dropped when the model falls behind."""
    if isinstance(stall_timeout_s, bool) or not (isinstance(stall_timeout_s, (int, float))
                                                 and 0 < stall_timeout_s < 1e6):
        raise UserError(f"timeline.stall_timeout_s must be a number of seconds above 0, got "
                        f"{stall_timeout_s!r}")

    def plan(info: SourceInfo) -> WindowPlan:
        seconds = default_window_s(model.sampler, info.fps) if window_s is None else window_s
        return WindowPlan(model.sampler, info.fps, seconds, stride_s)

    plan(SourceInfo("check", "check", False, fps or 25.0))  # bad settings: before any decoding
    stream = frame_stream(source, fps, decode_threads, stall_timeout_s, live)
    return score_windows(stream, plan, model.frame_transform, model.scorer, stall_timeout_s,
                         stats, on_open, should_stop)
