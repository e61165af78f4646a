"""``vidtl-predict ... mode=timeline``: what happens when, in long videos and live streams.

Each input (video files from a file, a folder or a list; or one live source: a stream URL,
``-`` for stdin, a capture device) is read once, in order; sliding windows are scored as their
last frame arrives and written to ``output_dir``: ``timeline.csv`` (a row per window),
``segments.csv`` (smoothed, merged) and ``<stem>_timeline.png``. See docs/timeline.md.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from vidtl.core.errors import UserError
from vidtl.core.own_files import WouldReplaceError
from vidtl.core.quoting import printable
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.inference.inputs import expand_input
from vidtl.inference.timeline_model import (
    RUNTIMES,
    TimelineModel,
    timeline_scores,
    torch_timeline_model,
)
from vidtl.timeline.frame_streams import SourceInfo, StreamStalledError, is_live
from vidtl.timeline.outputs import TimelineFiles
from vidtl.timeline.picture import draw_timeline, picture_path
from vidtl.timeline.scoring_loop import MAX_KEPT, TimelineStats, WindowScore
from vidtl.timeline.segments import (
    Segment,
    SegmentBuilder,
    Smoother,
    ThresholdSegmentBuilder,
    check_smoothing,
)
from vidtl.timeline.window_plan import WindowPlan

log = logging.getLogger(__name__)


class StopSignals:
    """Ctrl-C and SIGTERM end the pass between two windows (the window being written is
    finished, the files stay complete); a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.reason = ""

    def __call__(self) -> bool:
        return bool(self.reason)

    def _stop(self, signum: int, frame: Any) -> None:
        if self.reason:
            raise KeyboardInterrupt
        self.reason = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        previous = {}
        try:
            for number in (signal.SIGINT, signal.SIGTERM):
                previous[number] = signal.signal(number, self._stop)
        except ValueError:  # not the main thread: the defaults stay
            pass
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def timeline_model(cfg: DictConfig, device: torch.device) -> TimelineModel:
    """The model of ``cfg.runtime``: the checkpoint's module, or the exported ONNX file."""
    if cfg.runtime not in RUNTIMES:
        raise UserError(f"runtime must be one of {RUNTIMES}, got {cfg.runtime!r}")
    threads = cfg.timeline.threads
    if threads is None:  # the decoding thread takes a core of its own
        threads = max(1, (os.cpu_count() or 2) - 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not (
            1 <= threads <= MAX_THREADS):
        raise UserError(f"timeline.threads must be a whole number from 1 to {MAX_THREADS} or "
                        f"null, got {threads!r}")
    torch.set_num_threads(threads)
    if cfg.runtime == "onnx":
        from vidtl.inference.onnx_model import load_onnx_model

        if not cfg.get("onnx_path"):
            raise UserError("runtime=onnx needs onnx_path=FILE, a model vidtl-export "
                            "format=onnx wrote")
        return load_onnx_model(cfg.onnx_path, threads)
    if not cfg.get("ckpt_path"):
        raise UserError("ckpt_path=PATH is needed: the checkpoint to predict with (or "
                        "runtime=onnx onnx_path=FILE)")
    trained = load_trained_model(cfg.ckpt_path, trusted_targets=cfg.get("trusted_targets") or (),
                                 custom_imports=cfg.get("custom_imports") or (),
                                 max_checkpoint_gb=cfg.get("max_checkpoint_gb"),
                                 view_aggregation=cfg.view_aggregation)
    trained.module.to(device)
    return torch_timeline_model(trained)


LIVE = {"auto": None, True: True, False: False}
MAX_THREADS = 1024


def check_timeline_settings(settings: DictConfig) -> None:
    """One line naming the key of any timeline setting of the wrong type or range."""
    live_setting(settings.live)
    for key in ("stride_s", "stall_timeout_s"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 < value < 1e6):
            raise UserError(f"timeline.{key} must be a number of seconds above 0, got "
                            f"{value!r}")
    window = settings.window_s
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, float))):
        raise UserError(f"timeline.window_s must be a number of seconds or null, got {window!r}")
    decode = settings.decode_threads
    if isinstance(decode, bool) or not isinstance(decode, int) or not 0 <= decode <= 64:
        raise UserError(f"timeline.decode_threads must be a whole number from 0 (FFmpeg's "
                        f"choice) to 64, got {decode!r}")
    if not isinstance(settings.picture, bool):
        raise UserError(f"timeline.picture must be true or false, got {settings.picture!r}")


def live_setting(value: object) -> bool | None:
    """``timeline.live``: auto (a URL, a pipe or a device is live), true or false."""
    if isinstance(value, str) or isinstance(value, bool):
        if value in LIVE:
            return LIVE[value]
    raise UserError(f"timeline.live must be auto, true or false, got {value!r}")


def timeline_sources(source: str) -> list[str]:
    """One live source, or the video files ``input=`` names."""
    if is_live(str(source)):
        return [str(source)]
    return [str(p) for p in expand_input(source)]


class VideoTimeline:
    """One source's smoothing, segments, progress and picture data."""

    def __init__(self, cfg: DictConfig, files: TimelineFiles, class_names: list[str],
                 pictures: set[str], thresholds: torch.Tensor | None = None) -> None:
        self.cfg, self.files, self.class_names = cfg, files, class_names
        self.pictures = pictures  # the pictures of this run so far (two inputs, one stem)
        settings = cfg.timeline
        self.smoother = Smoother(int(settings.smooth), settings.smooth_filter)
        stride, shortest = float(settings.stride_s), float(settings.min_segment_s)
        self.thresholds = thresholds  # multi-label or detector: the spans above threshold
        self.segments_of: SegmentBuilder | ThresholdSegmentBuilder = (
            SegmentBuilder(stride, shortest) if thresholds is None
            else ThresholdSegmentBuilder(stride, shortest, thresholds))
        self.segments: list[Segment] = []
        # the latest windows, for the picture (a live run does not grow without bound)
        self.spans: deque[tuple[float, float]] = deque(maxlen=MAX_KEPT)
        self.scores: deque[np.ndarray] = deque(maxlen=MAX_KEPT)
        self.info: SourceInfo | None = None
        self.bar: tqdm | None = None
        self.stats = TimelineStats()

    def opened(self, info: SourceInfo, plan: WindowPlan) -> None:
        self.info = info
        log.info("%s: %s, %.3g fps, windows of %.3g s (%d frames, %d sampled) every %.3g s",
                 printable(info.name), "live" if info.live else "file", info.fps, plan.window_s,
                 plan.window_length, len(plan.offsets), plan.stride_s)
        self.bar = tqdm(total=round(info.duration_s, 1) if info.duration_s else None,
                        unit="video s", disable=not self.cfg.progress, dynamic_ncols=True,
                        desc=info.stem[:30], file=sys.stderr)

    def window(self, score: WindowScore) -> None:
        self.files.window(score)
        self.spans.append((score.start_s, score.end_s))
        self.scores.append(score.probabilities.numpy().astype(np.float32))
        emit_window(score, self.class_names, self.cfg.output, self.info, self.thresholds)
        for smoothed in self.smoother.push(score.start_s, score.end_s, score.probabilities):
            self._segments(self.segments_of.add(*smoothed))
        if self.bar is not None:
            self.bar.update(max(0.0, round(score.end_s - self.bar.n, 1)))
            self.bar.set_postfix_str(f"{self.stats.realtime_factor:.1f}x real time, "
                                     f"{self.stats.dropped} dropped", refresh=False)

    def _segments(self, segments: Iterator[Segment]) -> None:
        for segment in segments:
            self.segments.append(segment)
            self.files.segment(self.info.name, segment)
            if self.cfg.output == "text" and not self.info.live:
                print(f"{printable(self.info.name)} {segment.start_s:.1f}-{segment.end_s:.1f} s:"
                      f" {printable(self.class_names[segment.label])} "
                      f"{segment.mean_probability:.3f}", flush=True)

    def finish(self, folder: Path) -> Path | None:
        """Close the segments, write the picture; return its path (None: no window)."""
        for smoothed in self.smoother.flush():
            self._segments(self.segments_of.add(*smoothed))
        self._segments(self.segments_of.finish())
        if self.bar is not None:
            self.bar.close()
        if not self.scores or not self.cfg.timeline.picture:
            return None
        spans = np.array(self.spans)
        path, copy = picture_path(folder, self.info.stem), 1
        while path.name in self.pictures:
            copy += 1
            path = picture_path(folder, f"{self.info.stem}_{copy}")
        self.pictures.add(path.name)
        try:
            return draw_timeline(path, self.info.name, spans[:, 0], spans[:, 1],
                                 np.stack(self.scores), self.class_names, self.segments,
                                 None if self.thresholds is None
                                 else self.thresholds.numpy())
        except WouldReplaceError as error:  # the CSV rows are written; the others go on
            print(f"error: {printable(str(error))}", file=sys.stderr, flush=True)
            return None


def emit_window(score: WindowScore, class_names: list[str], output: str,
                info: SourceInfo | None, thresholds: torch.Tensor | None = None) -> None:
    """A window on stdout: every window in JSON (with, for a model with thresholds, the
    ``detected`` classes: those at or above them); in text, those of a live source."""
    top = int(score.probabilities.argmax())
    if output == "json":
        row = {"video": score.video, "start_s": round(score.start_s, 3),
               "end_s": round(score.end_s, 3), "top_class": class_names[top],
               "top_probability": round(float(score.probabilities[top]), 6),
               "latency_s": round(score.latency_s, 4)}
        if thresholds is not None:
            above = torch.nonzero(score.probabilities >= thresholds).reshape(-1).tolist()
            row["detected"] = sorted(  # most probable first, as vidtl-predict's
                ([class_names[c], round(float(score.probabilities[c]), 6)] for c in above),
                key=lambda item: -item[1])
        print(json.dumps(row), flush=True)
    elif info is not None and info.live:
        print(f"{printable(score.video)} {score.start_s:.1f}-{score.end_s:.1f} s: "
              f"{printable(class_names[top])} {float(score.probabilities[top]):.3f}", flush=True)


def predict_timeline(cfg: DictConfig) -> dict[str, Any]:
    """Write the timeline of every source of ``cfg.input``; return a summary per source."""
    settings = cfg.timeline
    check_smoothing(settings.smooth, settings.smooth_filter, settings.min_segment_s)
    check_timeline_settings(settings)
    sources = timeline_sources(cfg.input)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available()
                          else "cpu" if cfg.device == "auto" else cfg.device)
    model = timeline_model(cfg, device)
    folder = Path(cfg.output_dir).expanduser()
    files = TimelineFiles(folder, model.class_names)
    summary: dict[str, Any] = {}
    stop = StopSignals()
    pictures: set[str] = set()
    try:
        with stop.installed():
            for source in sources:
                summary[source] = one_source(cfg, model, files, folder, source, stop, pictures)
                if stop.reason:
                    break
    except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM: at once, rows written so far kept
        raise UserError(f"stopped at once by a second signal; the rows written so far are in "
                        f"{folder}") from None
    finally:
        files.close()
    stopped = bool(stop.reason)
    failed = sum("error" in s and not s.get("windows") for s in summary.values())
    log.info("timeline of %d of %d inputs in %s%s", len(summary) - failed, len(sources),
             folder, " (stopped)" if stopped else "")
    if summary and failed == len(summary):
        raise UserError(f"no input could be read ({failed} failed; see above)")
    stalled = [name for name, s in summary.items() if s.get("stalled")]
    if stalled:  # a supervisor restarting a camera's run must tell this from its end
        raise UserError(f"{len(stalled)} live input(s) stalled (see above); the files in "
                        f"{folder} are complete")
    return summary


def one_source(cfg: DictConfig, model: TimelineModel, files: TimelineFiles, folder: Path,
               source: str, stop: StopSignals, pictures: set[str]) -> dict[str, Any]:
    """The timeline of one source; an unreadable one is reported and the others go on."""
    video = VideoTimeline(cfg, files, model.class_names, pictures, model.thresholds)
    settings = cfg.timeline
    result: dict[str, Any] = {}
    scores = timeline_scores(model, source, settings.window_s, float(settings.stride_s),
                             decode_threads=int(settings.decode_threads),
                             stall_timeout_s=float(settings.stall_timeout_s), stats=video.stats,
                             on_open=video.opened, live=live_setting(settings.live),
                             should_stop=stop)
    try:
        for score in scores:
            video.window(score)
    except Exception as error:  # noqa: BLE001 - reported; the other inputs go on
        message = " ".join(str(error).split())[:400]
        if not isinstance(error, (UserError, OSError)):
            message = f"{type(error).__name__}: {message}"
        print(f"error: {printable(message)}", file=sys.stderr, flush=True)
        result["error"] = message
        result["stalled"] = isinstance(error, StreamStalledError)
    finally:
        scores.close()
    if stop.reason:
        result["stopped"] = stop.reason
    if video.info is None:
        if "stopped" not in result:
            result.setdefault("error", "not opened")
        return result
    picture = video.finish(folder)
    stats = video.stats
    latencies = stats.latencies or [0.0]
    result.update(windows=stats.windows, dropped=stats.dropped, video_s=stats.video_s,
                  realtime_factor=stats.realtime_factor, picture=str(picture) if picture else None,
                  latency_mean_s=float(np.mean(latencies)),
                  latency_max_s=float(np.max(latencies)))
    log.info("%s: %d windows, %d segments, %.1fx real time, latency %.3f s mean / %.3f s max, "
             "%d windows dropped%s%s", printable(video.info.name), stats.windows,
             len(video.segments), stats.realtime_factor, result["latency_mean_s"],
             result["latency_max_s"], stats.dropped,
             f"; stopped by {result['stopped']}, files complete" if "stopped" in result else "",
             "" if stats.windows or "stopped" in result or "error" in result
             else "; no window")
    if stats.stopped_early:
        log.warning("%s: decoding ended early (%s)", printable(video.info.name),
                    printable(stats.stopped_early))
    return result

