"""Timelines of a long video: how far ahead of real time ``vidtl-predict mode=timeline`` scores.

Each row scores the sliding windows of one test video (25 fps, 480x270 H.264, ``--seconds`` long:
clips of ``../shared/data/ucf101_subset20/videos`` joined and scaled by ``ffmpeg``, or synthetic
frames where those are absent) with 8-frame TSN windows (segment sampling, average pooling,
windows of the default length, 2 s, every 1 s) and reports the real-time factor (video
seconds per wall second), the
latency of each window (its last frame decoded -> its score out), the model's own time per
window, and the frames decoded and converted to RGB. Models (random weights: speed only):
EfficientNet-Lite0 at 112 and 224 px and ResNet-50 at 224 px, each run by torch and by
onnxruntime (``vidtl-export format=onnx``) with 1 and 2 threads, and a baseline that seeks each
window's frames with decord instead of the one sequential pass. ``decode`` rows decode the
whole video alone (the ceiling of every row) and time the RGB conversion and crop of a frame.

    python benchmarks/timeline.py                 # every row, about 10 minutes on 2 cores
    python benchmarks/timeline.py --rows lite0_112:torch:1t decode:1t   # some rows
    python benchmarks/timeline.py --gpu           # on a GPU: the torch rows on CUDA
    python benchmarks/timeline.py --smoke --docs /tmp/page.md   # a 5 s video, a tiny model

Results go to ``<out>/results.json`` (each row as it finishes) and to docs/benchmarks.md (or
``--docs``) between this benchmark's markers, with the command that wrote the table.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import tempfile
import time
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from docs_section import REPO, SHARED, benchmark_parser, docs_page, table_key
from runner import Table, run_rows, this_table, written_by

TABLE = Table("benchmarks/timeline.py")
GPU_TABLE = Table("benchmarks/timeline.py --gpu")
WIDTH, HEIGHT, FPS, GOP = 480, 270, 25, 50  # a keyframe every 2 s
FRAMES, STRIDE_S = 8, 1.0
CLASSES = [f"class_{i:03d}" for i in range(101)]  # UCF101's head size
# model name -> (train config overrides, crop size)
MODELS = {
    "lite0_112": (["model/backbone=efficientnet_lite0"], 112),
    "lite0_224": (["model/backbone=efficientnet_lite0"], 224),
    "resnet50_224": (["model/backbone=resnet50"], 224),
}
SMOKE_MODELS = {"test_efficientnet_112": (["model/backbone=timm",
                                          "model.backbone.name=test_efficientnet"], 112)}
TARGET_MODEL, TARGET_FACTOR, TARGET_LATENCY_S = "lite0_112", 10.0, 1.0
KIND_NAMES = {"decode": "decode only", "torch": "timeline", "onnx": "timeline",
              "seek": "seek per window"}
BUSY = (": other work shared the cores, which slows the rows of 2 threads most (each parallel step "
        "of the model and the crop waits for its slower thread); compare rows of 1 thread.")


class RowSpec(NamedTuple):
    """One row: ``kind`` decode (the video alone), torch or onnx (a timeline) or seek (the
    baseline: decord reads each window's frames), with ``threads`` (0: the libraries' choice)."""

    kind: str
    threads: int
    model: str | None = None
    device: str = "cpu"

    @property
    def name(self) -> str:
        threads = f"{self.threads}t" if self.threads else self.device
        return ":".join(p for p in (self.model, self.kind, threads) if p)


def row_specs(smoke: bool, gpu: bool) -> list[RowSpec]:
    """Every row of a run, in order (the rows of one model together: it is built once)."""
    if gpu:
        return [RowSpec("decode", 0, device="cuda"),
                *(RowSpec(kind, 0, model, "cuda") for model in MODELS
                  for kind in ("torch", "seek"))]
    if smoke:
        model = next(iter(SMOKE_MODELS))
        return [RowSpec("decode", 1), *(RowSpec(k, 1, model) for k in ("torch", "onnx", "seek"))]
    return [RowSpec("decode", 1), RowSpec("decode", 2),
            *(spec for model in MODELS for spec in (
                *(RowSpec(kind, threads, model) for kind in ("torch", "onnx")
                  for threads in (1, 2)), *(RowSpec("seek", t, model) for t in (1, 2))))]


def ucf_clips(shared: Path) -> list[Path]:
    """The clips of ``shared``'s UCF101 subset, one of each class in turn."""
    folder = shared / "data" / "ucf101_subset20" / "videos"
    if not folder.is_dir():
        return []
    classes = [sorted(c.glob("*.mp4")) + sorted(c.glob("*.avi"))
               for c in sorted(folder.iterdir()) if c.is_dir()]
    longest = max(map(len, classes), default=0)
    return [clips[i] for i in range(longest) for clips in classes if i < len(clips)]


def ffmpeg_video(clips: list[Path], seconds: float, path: Path) -> None:
    """``clips`` joined, scaled to WIDTHxHEIGHT at FPS and cut at ``seconds``, into ``path``."""
    listing = path.with_suffix(".txt")
    quoted = [str(c.resolve()).replace("'", "'\\''") for c in clips]
    listing.write_text("".join(f"file '{q}'\n" for q in quoted))
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-t", f"{seconds:g}", "-an",
                    "-vf", f"scale={WIDTH}:{HEIGHT},setsar=1,fps={FPS}", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-g", str(GOP), "-pix_fmt", "yuv420p",
                    "-f", "mp4", str(path)], check=True)
    listing.unlink()


def synthetic_video(seconds: float, path: Path) -> None:
    """Moving patterns with some noise, written frame by frame with PyAV."""
    import av

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "23", "g": str(GOP), "preset": "veryfast"}
        for t in range(round(seconds * FPS)):
            scene = t // (4 * FPS)  # a new pattern every 4 s
            base = np.sin((xx * (1 + scene % 3) + yy + 6 * t) / (20 + 5 * scene % 4))
            frame = np.stack([base, np.roll(base, 40 + scene, 1), -base], -1) * 100 + 128
            frame += rng.normal(0, 6, frame.shape)
            image = av.VideoFrame.from_ndarray(frame.clip(0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def long_video(folder: Path, seconds: float, shared: Path) -> Path:
    """The test video of ``seconds`` (made once, then kept in ``folder``)."""
    clips = ucf_clips(shared) if shutil.which("ffmpeg") else []
    path = folder / f"timeline_{seconds:g}s_{'ucf101' if clips else 'synthetic'}.mp4"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial_path = path.with_name(path.stem + ".partial")
        if clips:  # every clip lasts over a second
            ffmpeg_video(clips[:math.ceil(seconds) + 1], seconds, partial_path)
        else:
            synthetic_video(seconds, partial_path)
        partial_path.replace(path)
    return path


def short_side(crop: int) -> int:
    return round(crop * 256 / 224)  # 224 of 256, as in evaluation


@cache
def torch_module(model: str, device: str) -> torch.nn.Module:
    """The model's VideoClassificationModule, random weights, as ``vidtl-train`` builds it."""
    from hydra import compose, initialize_config_dir

    from vidtl.assembly.model import build_module
    from vidtl.cli import config_dir

    overrides, crop = {**MODELS, **SMOKE_MODELS}[model]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            *overrides, "model.backbone.pretrained=false", f"data.crop_size={crop}",
            f"data.short_side={short_side(crop)}", f"data.num_frames={FRAMES}",
            "data.sampler=segment", "model/temporal=avg"])
    return build_module(cfg.model, CLASSES, FRAMES, pretrained=False).eval().to(device)


@cache
def onnx_file(model: str, folder: Path) -> Path:
    """The model exported as ``vidtl-export format=onnx`` writes it (in ``folder``)."""
    from vidtl.inference.export import export_classifier

    crop = {**MODELS, **SMOKE_MODELS}[model][1]
    sampling = {"num_frames": FRAMES, "sampler": "segment", "frame_interval": 1,
                "short_side": short_side(crop), "crop_size": crop}
    return export_classifier(torch_module(model, "cpu").classifier, CLASSES, FRAMES, crop,
                             folder / f"{model}.onnx", "onnx",
                             extra={"clip_sampling": sampling})


def timeline_model(spec: RowSpec, folder: Path):
    """The row's TimelineModel: the torch module, or its ONNX export in onnxruntime."""
    from vidtl.data.clips.sampling import SegmentSampler
    from vidtl.data.clips.transforms import EvalClipTransform
    from vidtl.inference.onnx_model import load_onnx_model
    from vidtl.inference.timeline_model import TimelineModel, torch_scorer

    if spec.kind == "onnx":
        return load_onnx_model(onnx_file(spec.model, folder), spec.threads)
    crop = {**MODELS, **SMOKE_MODELS}[spec.model][1]
    return TimelineModel(torch_scorer(torch_module(spec.model, spec.device)), CLASSES,
                         SegmentSampler(FRAMES), EvalClipTransform(crop, short_side(crop)))


def model_ms(scorer, crop: int, repeats: int = 5) -> float:
    """Median milliseconds of the scorer on one random clip (after two warm-up calls)."""
    clip = torch.randint(0, 256, (1, FRAMES, 3, crop, crop), dtype=torch.uint8)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        scorer(clip)[0].float().cpu()
        if i >= 2:
            times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def latency_fields(latencies: list[float]) -> dict:
    values = np.asarray(latencies or [math.nan])
    return {"latency_mean_s": float(values.mean()),
            "latency_p95_s": float(np.percentile(values, 95)),
            "latency_max_s": float(values.max())}


def decode_row(spec: RowSpec, video: Path, crops: list[int]) -> dict:
    """One sequential PyAV pass decoding every frame (none converted), then the cost of the
    RGB conversion and of each crop on the first 100 frames."""
    from vidtl.data.clips.transforms import EvalClipTransform
    from vidtl.timeline.frame_streams import PyAVFrameStream

    stream = PyAVFrameStream(str(video), spec.threads)
    start = time.perf_counter()
    info, kept, frames = stream.open(), [], 0
    for frame in stream.frames():
        frames += 1
        if len(kept) < 100:
            kept.append(frame)
    wall = time.perf_counter() - start
    stream.close()
    start = time.perf_counter()
    arrays = [frame.rgb() for frame in kept]
    convert_ms = 1000 * (time.perf_counter() - start) / len(kept)
    crop_ms = {}
    for crop in crops:
        transform = EvalClipTransform(crop, short_side(crop))
        start = time.perf_counter()
        for array in arrays:
            transform.crops(array[None], 1)
        crop_ms[str(crop)] = 1000 * (time.perf_counter() - start) / len(arrays)
    return {"realtime_factor": frames / info.fps / wall, "frames_decoded": frames,
            "frames_converted": 0, "video_s": frames / info.fps, "wall_s": wall,
            "decode_ms_per_frame": 1000 * wall / frames, "convert_ms_per_frame": convert_ms,
            "crop_ms_per_frame": crop_ms}


def timeline_row(spec: RowSpec, video: Path, folder: Path) -> dict:
    """The timeline of ``video``: one sequential pass, windows scored as they fill."""
    from vidtl.inference.timeline_model import timeline_scores
    from vidtl.timeline.scoring_loop import TimelineStats

    model = timeline_model(spec, folder)
    ms = model_ms(model.scorer, model.eval_transform.crop_size)
    stats = TimelineStats()
    windows = sum(1 for _ in timeline_scores(model, str(video), None, STRIDE_S,
                                             decode_threads=spec.threads, stats=stats))
    return {"realtime_factor": stats.realtime_factor, **latency_fields(stats.latencies),
            "model_ms": ms, "frames_decoded": stats.frames,
            "frames_converted": stats.frames_converted, "windows": windows,
            "video_s": stats.video_s, "wall_s": stats.wall_s}


def seek_row(spec: RowSpec, video: Path, folder: Path) -> dict:
    """The baseline: each window's sampled frames read with decord (a seek per window), cropped
    and scored; latency: from asking for the window's frames to its score."""
    from vidtl.data.frames.decoders import open_video
    from vidtl.timeline.window_plan import WindowPlan, default_window_s

    model = timeline_model(spec, folder)
    ms = model_ms(model.scorer, model.eval_transform.crop_size)
    start = time.perf_counter()
    reader = open_video(video, "decord", spec.threads)
    count, fps = len(reader), float(reader.fps)
    plan = WindowPlan(model.sampler, fps, default_window_s(model.sampler, fps), STRIDE_S)
    latencies, index = [], 0
    while (window := plan.window(index)).last_frame < count:
        asked = time.perf_counter()
        frames = reader.get_frames(window.frames)
        clip = model.eval_transform.crops(frames, 1)[0]
        model.scorer(clip.unsqueeze(0))[0].float().cpu()
        latencies.append(time.perf_counter() - asked)
        index += 1
    wall = time.perf_counter() - start
    return {"realtime_factor": count / fps / wall, **latency_fields(latencies), "model_ms": ms,
            "frames_decoded": None, "frames_converted": index * FRAMES, "windows": index,
            "video_s": count / fps, "wall_s": wall}


def run_row(name: str, specs: dict[str, RowSpec], video: Path, folder: Path,
            smoke: bool) -> dict:
    spec, load = specs[name], os.getloadavg()[0]  # other work on the machine slows a row
    if spec.threads:
        torch.set_num_threads(spec.threads)
    if spec.kind == "decode":
        crops = sorted({crop for _, crop in (SMOKE_MODELS if smoke else MODELS).values()})
        measured = decode_row(spec, video, crops)
    elif spec.kind == "seek":
        measured = seek_row(spec, video, folder)
    else:
        measured = timeline_row(spec, video, folder)
    crop = {**MODELS, **SMOKE_MODELS}[spec.model][1] if spec.model else None
    return {"row": name, "kind": spec.kind, "model": spec.model, "crop": crop,
            "threads": spec.threads, "device": spec.device, "video": video.name,
            "load_1m": load, "table": table_key(smoke), **measured}


def cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def table_line(r: dict) -> str:
    runtime = {"onnx": "onnxruntime", "decode": "-"}.get(r["kind"], "torch")
    threads = str(r["threads"]) if r["threads"] else f"auto ({r['device']})"
    decoded = "-" if r["frames_decoded"] is None else str(r["frames_decoded"])
    return (f"| {r['model'] or '-'} | {r['crop'] or '-'} | {KIND_NAMES[r['kind']]} | {runtime} "
            f"| {threads} | {cell(r['realtime_factor'], 1)} | {cell(r.get('latency_mean_s'))} | "
            f"{cell(r.get('latency_p95_s'))} | {cell(r.get('latency_max_s'))} | "
            f"{cell(r.get('model_ms'), 0)} | {decoded} | {r['frames_converted']} |")


def verdict(rows: list[dict]) -> list[str]:
    """Whether the target is met, and the per-frame and per-window costs behind the rows."""
    lines = []
    target = [r for r in rows if r["model"] == TARGET_MODEL and r["kind"] in ("torch", "onnx")]
    if target:
        best = max(target, key=lambda r: r["realtime_factor"])
        met = [r["row"] for r in target if r["realtime_factor"] >= TARGET_FACTOR
               and r["latency_max_s"] < TARGET_LATENCY_S]
        lines += ["", f"Target (Lite0 at 112 px, {FRAMES} frames, stride {STRIDE_S:g} s: at least "
                  f"{TARGET_FACTOR:g}x real time, every window's latency under "
                  f"{TARGET_LATENCY_S:g} s): **{'met' if met else 'not met'}**"
                  + (f" by {', '.join(met)}." if met else
                     f"; the best row, {best['row']}, runs at "
                     f"{best['realtime_factor']:.1f}x with a latency of at most "
                     f"{best['latency_max_s']:.2f} s.")]
    for r in (r for r in rows if r["kind"] == "decode"):
        crops = ", ".join(f"{ms:.2f} ms at {crop} px" for crop, ms in r["crop_ms_per_frame"]
                          .items())
        lines += ["", f"Decoding alone ({r['row']}): {r['realtime_factor']:.1f}x real time, "
                  f"{r['decode_ms_per_frame']:.2f} ms a frame; converting a frame to RGB "
                  f"{r['convert_ms_per_frame']:.2f} ms, resizing and cropping it {crops}."]
    return lines


def write_docs(rows: list[dict], video: str, gpu: bool, docs: Path | None) -> list[str]:
    from vidtl.timeline.window_plan import SEGMENT_WINDOW_S

    loads = [r["load_1m"] for r in rows]
    lines = [f"{written_by()}; video `{video}` ({WIDTH}x{HEIGHT}, {FPS} fps, H.264, a keyframe "
             f"every {GOP // FPS} s), windows of {SEGMENT_WINDOW_S:g} s every {STRIDE_S:g} s, "
             f"{FRAMES} frames each; "
             f"the 1-minute load average before each row was {min(loads):.1f} to "
             f"{max(loads):.1f}" + (BUSY if max(loads) >= (os.cpu_count() or 1) else "."),
             "", "| model | crop (px) | mode | runtime | threads | real time (x) | latency mean "
             "(s) | latency p95 (s) | latency max (s) | model (ms/window) | frames decoded | "
             "frames converted |", "|---" * 12 + "|",
             *(table_line(r) for r in rows), *verdict(rows)]
    return (GPU_TABLE if gpu else TABLE).write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "a 5 s video, timm's test_efficientnet, a row of each "
                                       "kind")
    names = [s.name for smoke in (False, True) for gpu in (False, True)
             for s in row_specs(smoke, gpu)]
    parser.add_argument("--rows", nargs="*", choices=names, help="default: every row")
    parser.add_argument("--seconds", type=float, default=60.0, help="the test video's length")
    parser.add_argument("--gpu", action="store_true",
                        help="the torch rows on CUDA (writes its own table)")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "timeline")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA GPU")
    out = args.out / ("smoke" if args.smoke else "gpu" if args.gpu else "")
    out.mkdir(parents=True, exist_ok=True)
    video = long_video(args.out / "video", 5.0 if args.smoke else args.seconds, args.shared)
    specs = {s.name: s for s in row_specs(args.smoke, args.gpu)}
    with tempfile.TemporaryDirectory() as folder:
        row = partial(run_row, specs=specs, video=video, folder=Path(folder), smoke=args.smoke)
        results = run_rows([n for n in specs if not args.rows or n in args.rows], row,
                           out / "results.json")
    rows = this_table(results, list(specs), args.smoke)
    if rows:  # none: --rows of another table only
        print("\n".join(write_docs(rows, video.name, args.gpu, docs_page(args))))


if __name__ == "__main__":
    main()
