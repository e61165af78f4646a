"""Timeline accuracy on a long video: what window length, stride and smoothing give, and cost.

A checkpoint is trained on ucf101_subset20's train split with a recipe of
``benchmarks/real_transfer.py`` (``--recipe``; default ``linear_probe_cached``: EfficientNet-Lite0
with its bundled ImageNet weights, a linear probe on cached features, 112 px, a minute or two on
2 cores; each recipe has a table of its own), or reused from an earlier run of this script in
``<out>/<recipe>/train`` that had the same overrides. A long video is built from ``--clips``
test clips of as many classes in a seeded random order (``--seed``), each re-encoded to 320x240
at 25 fps and concatenated into one H.264 file with PyAV (``<out>/<recipe>/long.mp4``; the true
clip boundaries and classes in ``long.json`` beside it). The timeline is scored once per window
length and stride (:func:`vidtl.inference.timeline_model.timeline_scores` on
``vidtl.load(ckpt).timeline_model()``, as ``vidtl.load(ckpt).timeline`` runs it); each smoothing
and minimum segment length is applied to those windows with the classes ``vidtl-predict
mode=timeline`` uses, and the command's own ``segments.csv`` for one setting is checked to match.
Nothing is tuned on the test split: each setting is reported as it comes.

    python benchmarks/timeline_accuracy.py             # about 5 min on 2 cores
    python benchmarks/timeline_accuracy.py --recipe lite2_linear_probe_cached_224  # about 15 min
    python benchmarks/timeline_accuracy.py --smoke --docs /tmp/page.md  # a tiny run (tests)

Data: ``--data`` (default ../shared/data/ucf101_subset20, or under $VIDTL_SHARED); --smoke makes
a tiny synthetic one under ``<out>/smoke``. Rows go to ``<out>/<recipe>/results.json`` as they
finish, the table to docs/benchmarks.md (or ``--docs``) between the recipe's markers.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import io
import json
import math
import os
import random
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml
from docs_section import REPO, SHARED, benchmark_parser, docs_page, relative, table_key
from real_transfer import ROWS as RECIPES
from real_transfer import row_overrides
from runner import Table, run_rows, save_results, this_table, written_by
from training_rows import final_test_top1, finished, recorded_minutes, train_command, train_row

DEFAULT_RECIPE = "linear_probe_cached"
VIDEO = {"width": 320, "height": 240, "fps": 25}
SMOKE_VIDEO = {"width": 64, "height": 48, "fps": 25}
STEP_S = 0.1  # frame-level accuracy: one point every STEP_S seconds
CLI_CHECK = (2.0, 1.0, 1, 2.0)  # the setting (vidtl-predict's defaults) also run by it


class Setting(NamedTuple):
    """One row: windows of ``window_s`` every ``stride_s``, a median filter over ``smooth``
    windows, segments shorter than ``min_segment_s`` absorbed."""

    window_s: float
    stride_s: float
    smooth: int
    min_segment_s: float

    @property
    def name(self) -> str:
        return (f"window {self.window_s:g} s, stride {self.stride_s:g} s, smooth "
                f"{self.smooth}, min segment {self.min_segment_s:g} s")


def table(recipe: str) -> Table:
    """The table of a recipe: the default's, or one named after ``--recipe``."""
    return Table("benchmarks/timeline_accuracy.py"
                 + ("" if recipe == DEFAULT_RECIPE else f" --recipe {recipe}"))


def grid(args: argparse.Namespace) -> list[Setting]:
    return [Setting(w, s, k, m) for w in args.windows for s in args.strides
            for k in args.smooth for m in args.min_segments]


# --- the checkpoint -----------------------------------------------------------------------


def checkpoint(args: argparse.Namespace) -> dict:
    """Train the recipe on the train split into ``<out>/train`` (or reuse a finished run there
    that had the same overrides); the checkpoint, its training command, the minutes it took
    (feature extraction included) and its test top-1."""
    run_dir = args.out / "train"
    overrides = row_overrides(args.recipe, args.epochs, args.data, args.out, args.smoke)
    recorded = run_dir / ".hydra" / "overrides.yaml"
    if recorded.is_file() and yaml.safe_load(recorded.read_text()) == overrides and finished(
            run_dir):
        minutes = recorded_minutes(run_dir)
    else:
        # features extracted anew: a run that reads a cache draws other random numbers than one
        # that fills it, and ends with other weights
        shutil.rmtree(args.out / "data" / "feature_cache", ignore_errors=True)
        minutes = train_row(overrides, run_dir)
    return {"path": str(run_dir / "checkpoints" / "last.ckpt"), "recipe": args.recipe,
            "command": train_command(overrides), "minutes": minutes,
            "clip_test_top1": final_test_top1(run_dir)}


def smoke_data(out: Path) -> Path:
    """A tiny synthetic dataset as ``path,label`` lists: group 1 trains, group 2 tests."""
    from vidtl.data.tools.synthetic import SyntheticVideoSpec, ensure_synthetic_dataset

    spec = SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=30, width=64, height=48)
    root = ensure_synthetic_dataset(out / "synthetic", spec)
    for split, group in (("train.csv", "_g01_"), ("test.csv", "_g02_")):
        videos = sorted(p.relative_to(root) for p in root.rglob("*.avi") if group in p.name)
        lines = ["path,label", *(f"{v},{v.parent.name}" for v in videos)]
        (root / split).write_text("\n".join(lines) + "\n")
    return root


# --- the long video -----------------------------------------------------------------------


def pick_clips(data: Path, count: int, seed: int) -> list[dict]:
    """``count`` test clips of as many classes (one clip each), in a seeded random order."""
    with (data / "test.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    by_class: dict[str, list[str]] = {}
    for row in rows:
        by_class.setdefault(row["label"], []).append(row["path"])
    rng = random.Random(seed)
    labels = rng.sample(sorted(by_class), min(count, len(by_class)))
    return [{"path": rng.choice(sorted(by_class[label])), "label": label} for label in labels]


def resampled(path: Path, video: dict) -> Iterator[np.ndarray]:
    """The frames of ``path`` as RGB at the video's size, repeated or dropped to its fps."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or video["fps"])
        emitted = 0
        for index, frame in enumerate(container.decode(stream)):
            image = frame.reformat(width=video["width"], height=video["height"],
                                   format="rgb24").to_ndarray()
            while math.floor(emitted * rate / video["fps"] + 1e-6) <= index:
                yield image
                emitted += 1


def build_video(clips: list[dict], data: Path, out: Path, video: dict, seed: int) -> dict:
    """Concatenate ``clips`` into ``out/long.mp4`` (H.264); the truth, also in long.json."""
    import av

    path = out / "long.mp4"
    frames = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=video["fps"])
        stream.width, stream.height, stream.pix_fmt = video["width"], video["height"], "yuv420p"
        stream.options = {"crf": "20", "g": str(2 * video["fps"]), "threads": "1"}  # repeatable
        for clip in clips:
            clip["start_s"] = frames / video["fps"]
            for image in resampled(data / clip["path"], video):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                container.mux(stream.encode(frame))
                frames += 1
            clip["end_s"] = frames / video["fps"]
        container.mux(stream.encode())
    truth = {"video": path.name, **video, "seed": seed, "duration_s": frames / video["fps"],
             "clips": clips}
    save_results(out / "long.json", truth)
    return truth


# --- scoring ------------------------------------------------------------------------------


def score_pass(model, video: Path, window_s: float, stride_s: float) -> dict:
    """Every window of one pass over ``video``: (start_s, end_s, probabilities), the model's
    time per window (what a live viewer waits for once the window's last frame is in) and
    the pass's speed."""
    from vidtl.inference.timeline_model import timeline_scores
    from vidtl.timeline.scoring_loop import TimelineStats

    seconds: list[float] = []

    def timed(clips):
        start = time.perf_counter()
        scores = model.scorer(clips)
        seconds.append(time.perf_counter() - start)
        return scores

    stats = TimelineStats()
    windows = [(w.start_s, w.end_s, w.probabilities) for w in
               timeline_scores(replace(model, scorer=timed), video, window_s, stride_s,
                               stats=stats)]
    return {"windows": windows, "score_s": statistics.median(seconds),
            "realtime_factor": stats.realtime_factor}


def segments_of(windows: list, setting: Setting) -> list:
    """The segments ``vidtl-predict mode=timeline`` makes of ``windows`` (VideoTimeline's
    order: each window smoothed, then into segments; at the end the smoother's rest)."""
    from vidtl.timeline.segments import SegmentBuilder, Smoother

    smoother = Smoother(setting.smooth, "median")
    builder = SegmentBuilder(setting.stride_s, setting.min_segment_s)
    segments = []
    for window in windows:
        for smoothed in smoother.push(*window):
            segments.extend(builder.add(*smoothed))
    for smoothed in smoother.flush():
        segments.extend(builder.add(*smoothed))
    segments.extend(builder.finish())
    return segments


def label_at(starts: list[float], labels: list[str], t: float) -> str:
    """The label of the span (sorted by start) holding ``t``; the first or last outside."""
    return labels[min(max(bisect.bisect_right(starts, t) - 1, 0), len(labels) - 1)]


def scores(truth: dict, windows: list, segments: list[tuple[float, float, str]]) -> dict:
    """Frame-level accuracy, segments, boundary error and window accuracy against ``truth``."""
    true_starts = [c["start_s"] for c in truth["clips"]]
    true_labels = [c["label"] for c in truth["clips"]]
    starts = [s[0] for s in segments]
    labels = [s[2] for s in segments]
    points = np.arange(STEP_S / 2, truth["duration_s"], STEP_S)
    frame = np.mean([label_at(starts, labels, t) == label_at(true_starts, true_labels, t)
                     for t in points])
    predicted = starts[1:]
    errors = [min(abs(b - p) for p in predicted) for b in true_starts[1:]] if predicted else []
    window = np.mean([top == label_at(true_starts, true_labels, (start + end) / 2)
                      for start, end, top in windows])
    return {"frame_accuracy": float(frame), "segments": len(segments),
            "true_clips": len(truth["clips"]),
            "boundary_error_s": float(np.mean(errors)) if errors else None,
            "window_accuracy": float(window), "windows": len(windows)}


def run_setting(setting: Setting, passes: dict, model, truth: dict, video: Path,
                smoke: bool) -> dict:
    """One row: its pass (scored once per window and stride, shared), segments, scores."""
    key = (setting.window_s, setting.stride_s)
    if key not in passes:
        passes[key] = score_pass(model, video, *key)
    scored = passes[key]
    names = model.class_names
    windows = [(s, e, names[int(p.argmax())]) for s, e, p in scored["windows"]]
    segments = [(s.start_s, s.end_s, names[s.label])
                for s in segments_of(scored["windows"], setting)]
    delay = (setting.smooth // 2) * setting.stride_s
    return {"row": setting.name, **setting._asdict(), "table": table_key(smoke),
            **scores(truth, windows, segments), "score_ms": 1000 * scored["score_s"],
            "realtime_factor": scored["realtime_factor"], "smoothing_delay_s": delay,
            "latency_s": setting.window_s + delay + scored["score_s"],
            "predicted_segments": [[round(s, 3), round(e, 3), label]
                                   for s, e, label in segments]}


# --- the CLI's segments for one setting ---------------------------------------------------


def cli_segments(ckpt: str, video: Path, setting: Setting, folder: Path) -> list[list]:
    """``segments.csv`` of ``vidtl-predict mode=timeline`` (its composed config) for
    ``setting``."""
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir
    from vidtl.cli.predict_timeline import predict_timeline

    overrides = [f"ckpt_path={ckpt}", f"input={video}", "mode=timeline",
                 f"output_dir={folder}", f"timeline.window_s={setting.window_s}",
                 f"timeline.stride_s={setting.stride_s}", f"timeline.smooth={setting.smooth}",
                 "timeline.smooth_filter=median", f"timeline.min_segment_s={setting.min_segment_s}",
                 "progress=false", "output=json"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="predict", overrides=overrides)
    with contextlib.redirect_stdout(io.StringIO()):  # a JSON line per window
        predict_timeline(cfg)
    with (folder / "segments.csv").open(newline="") as file:
        return [[float(r["start_s"]), float(r["end_s"]), r["label"]]
                for r in csv.DictReader(file)]


def check_cli(ckpt: str, video: Path, rows: list[dict], out: Path) -> str:
    """Check that vidtl-predict's own segments.csv equals this script's segments for the
    default setting (else the last row's); the setting checked. Stops the run when not."""
    row = next((r for r in rows if (r["window_s"], r["stride_s"], r["smooth"],
                                    r["min_segment_s"]) == CLI_CHECK), rows[-1])
    setting = Setting(row["window_s"], row["stride_s"], row["smooth"], row["min_segment_s"])
    written = cli_segments(ckpt, video, setting, out / "cli_check")
    ours = row["predicted_segments"]
    same = len(written) == len(ours) and all(
        a[2] == b[2] and abs(a[0] - b[0]) < 2e-3 and abs(a[1] - b[1]) < 2e-3
        for a, b in zip(written, ours, strict=True))
    if not same:
        raise SystemExit(f"vidtl-predict's segments.csv ({out / 'cli_check'}) differs from "
                         f"this script's segments for {setting.name}: {written} != {ours}")
    return setting.name


# --- the table ----------------------------------------------------------------------------


def write_docs(rows: list[dict], truth: dict, model: dict, checked: str,
               docs: Path | None) -> None:
    clips = truth["clips"]
    lengths = [c["end_s"] - c["start_s"] for c in clips]
    lines = [f"{written_by()}; load average {model['load_before']:.2f} before the run. "
             f"Video: {len(clips)} test clips of {len(clips)} classes, "
             f"{truth['duration_s']:.1f} s ({min(lengths):.1f} to {max(lengths):.1f} s a clip), "
             f"{truth['width']}x{truth['height']} at {truth['fps']} fps, seed {truth['seed']}. "
             f"Model: `{model['recipe']}` of `benchmarks/real_transfer.py` trained on the "
             f"train split ({model['minutes']:.1f} min), clip-level test top-1 "
             f"{model['clip_test_top1']:.3f}. `vidtl-predict mode=timeline` wrote the same "
             f"segments for {checked}.", "",
             "| window (s) | stride (s) | smooth | min segment (s) | frame accuracy | segments "
             "(true) | boundary error (s) | window accuracy | compute (ms) | latency (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        error = "-" if r["boundary_error_s"] is None else f"{r['boundary_error_s']:.2f}"
        smooth = "none" if r["smooth"] == 1 else f"{r['smooth']} median"
        lines.append(f"| {r['window_s']:g} | {r['stride_s']:g} | {smooth} | "
                     f"{r['min_segment_s']:g} | {r['frame_accuracy']:.3f} | {r['segments']} "
                     f"({r['true_clips']}) | {error} | {r['window_accuracy']:.3f} | "
                     f"{r['score_ms']:.0f} | {r['latency_s']:.2f} |")
    lines += ["", f"Training (from the repository root): `{model['command']}`"]
    table(model["recipe"]).write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "a tiny synthetic video, a random backbone, 2 settings")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ucf101_subset20")
    parser.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                        help="the model: a row of real_transfer.py (a table of its own)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--clips", type=int, default=20, help="test clips (one per class)")
    parser.add_argument("--seed", type=int, default=0, help="which clips, in which order")
    parser.add_argument("--picture", type=Path, help="copy vidtl-predict's picture of the "
                        "checked setting here (the README's, with the Lite2 recipe)")
    parser.add_argument("--windows", type=float, nargs="+", default=[2.0, 4.0])
    parser.add_argument("--strides", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--smooth", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--min-segments", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--out", type=Path,
                        default=REPO / "logs" / "benchmarks" / "timeline_accuracy",
                        help="files go to <out>/<recipe> (a --smoke run: <out>/smoke)")
    return parser


def smoke_args(args: argparse.Namespace) -> dict:
    """A smoke run: its own folder and tiny data, one epoch, 4 clips, 2 settings."""
    args.out = args.out / "smoke"  # whatever the recipe
    args.out.mkdir(parents=True, exist_ok=True)
    args.data, args.epochs, args.clips = smoke_data(args.out), 1, 4
    args.windows, args.strides, args.smooth, args.min_segments = [1.0], [0.5], [1, 3], [0.5]
    return SMOKE_VIDEO


def main() -> None:
    args = build_parser().parse_args()
    load_before = os.getloadavg()[0]
    if args.smoke:
        video = smoke_args(args)
    else:
        video, args.out = VIDEO, args.out / args.recipe
    if not (args.data / "test.csv").is_file():
        raise SystemExit(f"{args.data} has no test.csv: give --data (see the docstring)")
    args.out.mkdir(parents=True, exist_ok=True)
    args.data = args.data.resolve()
    model_info = {**checkpoint(args), "load_before": load_before}
    truth = build_video(pick_clips(args.data, args.clips, args.seed), args.data, args.out,
                        video, args.seed)
    print(f"{relative(args.out / 'long.mp4')}: {len(truth['clips'])} clips, "
          f"{truth['duration_s']:.1f} s; checkpoint test top-1 "
          f"{model_info['clip_test_top1']:.3f}", flush=True)
    import vidtl

    model = vidtl.load(model_info["path"]).timeline_model()
    settings = {s.name: s for s in grid(args)}
    passes: dict = {}
    results = run_rows(settings, lambda name: run_setting(
        settings[name], passes, model, truth, args.out / "long.mp4", args.smoke),
        args.out / "results.json", show=lambda _, row: json.dumps(
            {k: v for k, v in row.items() if k not in ("predicted_segments", "table")}))
    rows = this_table(results, settings, args.smoke)
    checked = check_cli(model_info["path"], args.out / "long.mp4", rows, args.out)
    save_results(args.out / "model.json", model_info)
    write_docs(rows, truth, model_info, checked, docs_page(args))
    if args.picture and not args.smoke:  # vidtl-predict's picture of the checked setting
        shutil.copyfile(args.out / "cli_check" / "long_timeline.png", args.picture)
        print(f"picture: {relative(args.picture)}", flush=True)


if __name__ == "__main__":
    main()
