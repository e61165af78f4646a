"""Clips/s from raw video, re-encoded video and the frame store, and the frame store's size.

Builds a folder-format dataset of real 340x256 H.264 clips (Kinetics-style; by default the
clips of ../shared/videos, each linked ``--copies`` times), prepares it with ``vidtl-prepare``
(mode=frames and mode=reencode; resumable, so a rerun only measures), then runs
``vidtl-bench-data`` on each source: TSN sampling of 8 frames, 224 px multi-scale crops, batch 8.

    python benchmarks/data_throughput.py                  # this machine's CPU figures
    python benchmarks/data_throughput.py --gpu            # plus model-only and end-to-end
                                                          # training of ResNet-50 TSN-8 (bf16)
    python benchmarks/data_throughput.py --smoke --docs /tmp/page.md   # checks the script (tests)

Results go to logs/benchmarks/data/results.json (``--out``) and docs/benchmarks.md (or ``--docs``;
between this script's markers, ``--gpu`` runs in their own table), with the command that wrote
the table and each row's full ``vidtl-bench-data`` command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

from docs_section import REPO, SHARED, benchmark_parser, command_list, docs_page, machine
from runner import Table, console_command, run_json, run_rows, save_results, written_by

CLIPS_340x256_H264 = ("kinetics_demo_340x256.mp4", "test_340x256.mp4", "ava_demo_340x256.mp4",
                      "short_32frames_340x256.mp4")


def table(gpu: bool) -> Table:
    """The CPU table, or the ``--gpu`` run's."""
    return Table("benchmarks/data_throughput.py" + (" --gpu" if gpu else ""))


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


def tiny_clips(folder: Path) -> Path:
    """Small generated stand-ins (64x48, 24 frames) for the clips of ``--videos``."""
    from vidtl.data.tools.synthetic import SyntheticVideoSpec, render_video, write_video

    spec = SyntheticVideoSpec(num_frames=24, width=64, height=48)
    for label, name in enumerate(CLIPS_340x256_H264):
        if not (folder / name).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            write_video(folder / name, render_video(spec, label, 0, 0), fps=25, codec="mpeg4")
    return folder


def storage(train_videos: Path, store: Path, reencoded: Path) -> dict:
    """GB per hour of video of the training videos, their re-encoded form and their frames."""
    from vidtl.data.frames.frame_store import read_frame_file_info

    files = [p for p in (store / "train").rglob("*.frames") if not p.name.startswith(".")]
    seconds = sum(info.source_frames / info.fps for info in map(read_frame_file_info, files))

    def per_hour(paths: list[Path]) -> float:
        return sum(p.stat().st_size for p in paths) / seconds * 3600 / 1e9

    return {
        "video_seconds": seconds,
        "video_gb_per_hour": per_hour(list(train_videos.rglob("*.mp4"))),
        "reencoded_gb_per_hour": per_hour(list((reencoded / "train").rglob("*.mp4"))),
        "frames_gb_per_hour": per_hour(files),
    }


def row_overrides(workers: int, frames: Path, reencoded: Path, shards: Path, gpu: bool,
                  smoke: bool) -> dict[str, list[str]]:
    """Each row's ``vidtl-bench-data`` overrides: the source and how it is loaded."""
    processes = [f"data.num_workers={workers}"]
    threads = ["data.num_workers=0", f"data.load_threads={workers}"]
    store = ["data.source=frames", f"data.frames_root={frames}"]
    sources = {
        "video": processes,
        "reencoded": [*processes, f"data.root={reencoded}"],
        "frames": [*processes, *store],
        "frames_threads": [*threads, *store],
        "stream": [*processes, "data.source=stream", f"data.shards={shards}"],
    }
    if gpu:  # only with a device to move the crop and flip to: without one, such a row would
        # leave them out of its figure and compare unlike work with the rows above
        sources["frames_device_augment"] = [*processes, *store, "data.augment_on=device"]
        sources["frames_threads_device_augment"] = [*threads, *store, "data.augment_on=device"]
        # JPEG decoding with nvJPEG (on a CPU it would only move it to one thread)
        sources["frames_threads_decode_on_device"] = [*threads, *store, "data.augment_on=device",
                                                      "data.decode_on=device"]
    if smoke:
        sources = {k: sources[k] for k in ("video", "frames_threads", "stream")}
    return sources


def prepare_sources(root: Path, out: Path, workers: int) -> tuple[Path, Path, Path]:
    """The frame store, the re-encoded copy and the shard store of ``root`` (resumable: a
    rerun only checks them); the shards are packed from the frame store."""
    frames, reencoded, shards = out / "frames", out / "reencoded", out / "shards"
    for mode, output in (("frames", frames), ("reencode", reencoded), ("shards", shards)):
        run_json([sys.executable, "-m", "vidtl.cli.prepare", "data=folder", f"data.root={root}",
                  f"mode={mode}", f"output={output}", f"workers={workers}", "progress=false",
                  f"staging={out}"])
    return frames, reencoded, shards


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "tiny generated clips, three rows, one run")
    parser.add_argument("--videos", type=Path, default=SHARED / "videos")
    parser.add_argument("--out", type=Path,
                        help="default logs/benchmarks/data (a --smoke run: its smoke/ folder)")
    parser.add_argument("--copies", type=int, default=16, help="links per clip in train/")
    parser.add_argument("--clips", type=int, default=200,
                        help="clips measured per figure from video (5x that from frames)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; medians reported")
    parser.add_argument("--gpu", action="store_true",
                        help="also measure ResNet-50 TSN-8 training (bf16, batch 32)")
    return parser


def bench_commands(args: argparse.Namespace, root: Path,
                   sources: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each row's ``vidtl-bench-data`` command (as ``python -m vidtl.cli.bench_data``)."""
    bench = [sys.executable, "-m", "vidtl.cli.bench_data", "data=folder", f"data.root={root}"]
    if args.gpu:
        bench += ["model/backbone=resnet50", "model.backbone.pretrained=false",
                  "data.batch_size=32", "measure_model=true", "precision=bf16-mixed",
                  "channels_last=true"]
    else:
        bench += ["measure_model=false"]
    fast = ("frames", "stream")  # about as many seconds per row as the video rows
    return {name: [*bench, *overrides, f"clips={args.clips * (5 if name.startswith(fast) else 1)}"]
            for name, overrides in sources.items()}


def main() -> None:
    args = build_parser().parse_args()
    default = REPO / "logs" / "benchmarks" / "data"  # a smoke run never mixes with its data
    args.out = args.out or (default / "smoke" if args.smoke else default)
    if args.smoke:
        args.videos = tiny_clips(args.out / "videos")
        args.copies, args.clips, args.repeats, args.workers = 1, 4, 1, 1
    root = build_dataset(args.videos, args.out / "dataset", args.copies)
    frames, reencoded, shards = prepare_sources(root, args.out, args.workers)
    sources = row_overrides(args.workers, frames, reencoded, shards, args.gpu, args.smoke)
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "workers": args.workers,
               "repeats": args.repeats,
               "storage": storage(root / "train", frames, reencoded), "rows": {}}
    commands = bench_commands(args, root, sources)
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    for repeat in range(args.repeats):  # round-robin, so a slow spell of the machine hits all rows
        done = run_rows(commands, lambda name: run_json(commands[name]),
                        show=partial(progress, repeat))
        for name, run in done.items():
            runs[name].append(run)
    for name, command in commands.items():
        row = median_row(runs[name])
        row["loading"] = (f"{row['workers']} workers" if row["workers"]
                          else f"{row['load_threads']} threads, no workers")
        row["command"] = console_command(command)
        results["rows"][name] = row
    video = results["rows"]["video"]["loader_clips_per_s"]
    results["over_video"] = {name: row["loader_clips_per_s"] / video
                             for name, row in results["rows"].items()}
    name = "smoke.json" if args.smoke else "results_gpu.json" if args.gpu else "results.json"
    save_results(args.out / name, results)
    write_docs(results, args.gpu, docs_page(args))


def progress(repeat: int, name: str, run: dict) -> str:
    """The line printed after each run of a row."""
    return f"round {repeat + 1}: {name} {run['loader_clips_per_s']:.1f} clips/s"


def median_row(runs: list[dict]) -> dict:
    """Each figure's median over ``runs`` (and the loader's range, to show the spread)."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            row[key] = statistics.median(run[key] for run in runs)
    loader = [run["loader_clips_per_s"] for run in runs]
    row["loader_range"] = [min(loader), max(loader)]
    # A ratio in the table is the ratio of the medians beside it, not a median of ratios.
    row["loader_over_bare_loop"] = row["loader_clips_per_s"] / row["bare_loop_clips_per_s"]
    if "train_clips_per_s" in row and row.get("model_clips_per_s"):
        row["train_over_model"] = row["train_clips_per_s"] / row["model_clips_per_s"]
    row["repeats"] = len(runs)
    return row


def write_docs(results: dict, gpu: bool, docs: Path | None) -> None:
    storage = results["storage"]
    lines = [
        f"{written_by(results['machine'], results['date'])}; medians of {results['repeats']} "
        "runs taken round-robin over the rows (the loader's range in brackets).",
        "",
        "| source | loading | loader clips/s | bare loop clips/s (same work) | loader / bare loop |"
        " decoding alone clips/s |"
        + (" model-only clips/s | end-to-end clips/s | end-to-end / model |" if gpu else ""),
        "|---|---|---|---|---|---|" + ("---|---|---|" if gpu else ""),
    ]
    for name, row in results["rows"].items():
        low, high = row["loader_range"]
        decoding = row.get("decoder_clips_per_s")
        line = (f"| {name} | {row['loading']} | {row['loader_clips_per_s']:.1f} "
                f"({low:.1f}-{high:.1f}) | {row['bare_loop_clips_per_s']:.1f} | "
                f"{row['loader_over_bare_loop']:.2f} | "
                f"{f'{decoding:.1f}' if decoding else '-'} |")
        if gpu:
            line += (f" {row['model_clips_per_s']:.0f} | {row['train_clips_per_s']:.0f} | "
                     f"{row['train_over_model']:.2f} |")
        lines.append(line)
    lines += [
        "",
        "Loader clips/s over raw video: "
        + ", ".join(f"{name} **{ratio:.1f}x**" for name, ratio in results["over_video"].items())
        + f". Storage per hour of 340x256 video (measured on {storage['video_seconds']:.0f} s):"
        f" source H.264 {storage['video_gb_per_hour']:.2f} GB, re-encoded"
        f" {storage['reencoded_gb_per_hour']:.2f} GB, frame store (JPEG quality 90)"
        f" **{storage['frames_gb_per_hour']:.2f} GB**.",
        *command_list({name: row["command"] for name, row in results["rows"].items()}),
    ]
    table(gpu).write(lines, docs)


if __name__ == "__main__":
    main()
