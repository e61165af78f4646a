"""Clips/s from raw video, re-encoded video and the frame store, and the frame store's size.

Builds a folder-format dataset of real 340x256 H.264 clips (Kinetics-style; by default the
clips of ../shared/videos, each linked ``--copies`` times), prepares it with ``vidtl-prepare``
(mode=frames and mode=reencode; resumable, so a rerun only measures), then runs
``vidtl-bench-data`` on each source: TSN sampling of 8 frames, 224 px multi-scale crops, batch 8.

    python benchmarks/data_throughput.py                  # this machine's CPU figures
    python benchmarks/data_throughput.py --gpu            # plus model-only and end-to-end
                                                          # training of ResNet-50 TSN-8 (bf16)

Results go to logs/benchmarks/data/results.json and docs/benchmarks.md (between this script's
markers; ``--gpu`` runs write their own table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CLIPS_340x256_H264 = ("kinetics_demo_340x256.mp4", "test_340x256.mp4", "ava_demo_340x256.mp4",
                      "short_32frames_340x256.mp4")


def markers(gpu: bool) -> tuple[str, str]:
    name = "benchmarks/data_throughput.py" + (" --gpu" if gpu else "")
    return f"<!-- {name}: start -->", f"<!-- {name}: end -->"


def build_dataset(videos: Path, root: Path, copies: int) -> Path:
    """``root/{train,val}/<clip>/<clip>_cNN.mp4``: links to the real clips."""
    for name in CLIPS_340x256_H264:
        source = (videos / name).resolve()
        if not source.is_file():
            raise SystemExit(f"{source} is missing; pass --videos DIR with the clips "
                             f"{', '.join(CLIPS_340x256_H264)}")
        for subset, count in (("train", copies), ("val", 1)):
            folder = root / subset / Path(name).stem
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                link = folder / f"{Path(name).stem}_c{i:02d}.mp4"
                if not link.exists():
                    link.symlink_to(source)
    return root


def run_json(command: list[str]) -> dict:
    """Run a vidtl command; return the JSON object on its last line of output."""
    result = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def store_size(store: Path) -> dict:
    """Bytes of the frame store per hour of source video."""
    from vidtl.data.frame_store import read_frame_file_info

    files = [p for p in store.rglob("*.frames") if not p.name.startswith(".")]
    seconds = sum(info.source_frames / info.fps for info in map(read_frame_file_info, files))
    size = sum(p.stat().st_size for p in files)
    return {"store_bytes": size, "video_seconds": seconds,
            "gb_per_hour": size / seconds * 3600 / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "videos")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "data")
    parser.add_argument("--copies", type=int, default=16, help="links per clip in train/")
    parser.add_argument("--clips", type=int, default=200, help="clips measured per figure")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gpu", action="store_true",
                        help="also measure ResNet-50 TSN-8 training (bf16, batch 32)")
    args = parser.parse_args()
    root = build_dataset(args.videos, args.out / "dataset", args.copies)
    frames, reencoded = args.out / "frames", args.out / "reencoded"
    vidtl = [sys.executable, "-m"]
    data = ["data=folder", f"data.root={root}", f"data.num_workers={args.workers}"]
    for mode, output in (("frames", frames), ("reencode", reencoded)):
        run_json([*vidtl, "vidtl.cli.prepare", *data, f"mode={mode}", f"output={output}",
                  f"workers={args.workers}", "progress=false"])
    sources = {
        "video": [],
        "reencoded": [f"data.root={reencoded}"],
        "frames": ["data.source=frames", f"data.frames_root={frames}"],
    }
    bench = [*vidtl, "vidtl.cli.bench_data", *data, f"clips={args.clips}"]
    if args.gpu:
        bench += ["model/backbone=resnet50", "model.backbone.pretrained=false",
                  "data.batch_size=32", "measure_model=true", "precision=bf16-mixed",
                  "channels_last=true"]
    else:
        bench += ["measure_model=false"]
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "workers": args.workers,
               "store": store_size(frames), "rows": {}}
    for name, overrides in sources.items():
        command = [*bench, *overrides]
        row = run_json(command)
        row["command"] = " ".join(["vidtl-bench-data", *command[len(vidtl) + 1:]]).replace(
            f"{REPO}/", "")
        results["rows"][name] = row
        print(name, json.dumps(row), flush=True)
    results["frames_over_video"] = (results["rows"]["frames"]["loader_clips_per_s"]
                                    / results["rows"]["video"]["loader_clips_per_s"])
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results_gpu.json" if args.gpu else "results.json"
    (args.out / name).write_text(json.dumps(results, indent=2) + "\n")
    write_docs(results, args.gpu)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"


def write_docs(results: dict, gpu: bool) -> None:
    path = REPO / "docs" / "benchmarks.md"
    text = path.read_text()
    start, end = markers(gpu)
    store = results["store"]
    lines = [
        start,
        f"Machine: {results['machine']}; {results['workers']} loader workers. Written by "
        f"`python benchmarks/data_throughput.py{' --gpu' if gpu else ''}` on {results['date']}.",
        "",
        "| source | loader clips/s | bare decoder loop clips/s | loader / decoder loop |"
        + (" model-only clips/s | end-to-end clips/s | end-to-end / model |" if gpu else ""),
        "|---|---|---|---|" + ("---|---|---|" if gpu else ""),
    ]
    for name, row in results["rows"].items():
        line = (f"| {name} | {row['loader_clips_per_s']:.1f} | {row['decoder_clips_per_s']:.1f} "
                f"| {row['loader_over_decoder']:.2f} |")
        if gpu:
            line += (f" {row['model_clips_per_s']:.0f} | {row['train_clips_per_s']:.0f} | "
                     f"{row['train_over_model']:.2f} |")
        lines.append(line)
    lines += [
        "",
        f"Frame store over raw video (loader): **{results['frames_over_video']:.1f}x**. Frame store"
        f" size: {store['store_bytes'] / 1e6:.1f} MB for {store['video_seconds']:.0f} s of video"
        f" = **{store['gb_per_hour']:.2f} GB per hour** of 340x256 video (JPEG quality 90).",
        "",
        "Commands (from the repository root):",
        "",
        *[f"- {name}: `{row['command']}`" for name, row in results["rows"].items()],
        end,
    ]
    block = "\n".join(lines)
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
