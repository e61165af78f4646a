"""Cached frame features against decoded video: the same head, the same frozen backbone.

Two rows on the embedded synthetic dataset (192 training videos, 8 TSN segments, 96 px,
EfficientNet-Lite0 with its bundled weights frozen by ``finetune=linear_probe``), each trained
for ``--epochs`` (6) with a transformer head: one reads decoded video every epoch, the other
extracts ``feature_cache.train_views`` (4) augmented clips per training video once and trains
from the cache. Reported: training epoch time (loading included, validation excluded), the
one-off extraction time, and test top-1 of the final weights (on decoded video for both).

    python benchmarks/feature_cache.py           # about 10 min on 2 cores
    python benchmarks/feature_cache.py --smoke --docs /tmp/page.md  # a tiny run (tests)

Results go to ``<out>/results.json`` and to docs/benchmarks.md (or ``--docs``) between this
benchmark's markers, with the command that wrote the table and each row's full command.
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

from docs_section import REPO, benchmark_parser, command_list, docs_page
from runner import Table, run_rows, written_by
from training_rows import final_test_top1, run_metrics, tiny_synthetic, train_command, train_row

TABLE = Table("benchmarks/feature_cache.py")
HEAD = ["finetune=linear_probe", "model/temporal=transformer", "logger=none",
        "callbacks.progress_bar=null", "test=false"]
ROWS = {"decoded video": [], "cached features": ["feature_cache.enabled=true"]}
SMOKE = [*tiny_synthetic("test_resnet", video_frames=12), "feature_cache.train_views=1"]


def row_overrides(name: str, epochs: int, out: Path, smoke: bool) -> list[str]:
    """Every override of the row's ``vidtl-train`` run."""
    return [*HEAD, *ROWS[name], f"trainer.max_epochs={epochs}", f"paths.data_dir={out / 'data'}",
            *(SMOKE if smoke else [])]


def run_row(name: str, epochs: int, out: Path, smoke: bool) -> dict:
    run_dir = out / name.replace(" ", "_")
    overrides = row_overrides(name, epochs, out, smoke)
    minutes = train_row(overrides, run_dir)
    metrics = run_metrics(run_dir)
    clips_per_s = metrics["train_clips_per_s"]
    train_list = out / "data" / "synthetic" / "ucfTrainTestlist" / "trainlist01.txt"
    train_videos = len(train_list.read_text().splitlines())
    epoch_seconds = train_videos / clips_per_s
    return {"row": name, "overrides": ROWS[name], "command": train_command(overrides),
            "epoch_seconds": epoch_seconds, "minutes": minutes,
            "training_minutes": epochs * epoch_seconds / 60,
            "test_top1": final_test_top1(run_dir)}


def write_docs(rows: dict, epochs: int, load_before: float, docs: Path | None) -> None:
    video, cached = rows["decoded video"], rows["cached features"]
    lines = [f"{written_by()}; {epochs} epochs; the 1-minute load average before the first "
             f"row was {load_before:.1f}.", "",
             "| head trained on | epoch (s) | whole run (min) | test top-1 |", "|---|---|---|---|"]
    for r in (video, cached):
        lines.append(f"| {r['row']} | {r['epoch_seconds']:.2f} | {r['minutes']:.1f} | "
                     f"{r['test_top1']:.3f} |")
    speedup = video["epoch_seconds"] / cached["epoch_seconds"]
    lines += ["", f"Epochs from the cache are {speedup:.0f}x faster; the whole run includes the "
              "one-off extraction (4 views of every training video and the validation clips) "
              "and the test on decoded video.",
              *command_list({r["row"]: r["command"] for r in (video, cached)})]
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "tiny data, 1 epoch")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path,
                        default=REPO / "logs" / "benchmarks" / "feature_cache")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.smoke:
        args.epochs, args.out = 1, args.out / "smoke"
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]  # other work on the machine slows both rows
    row = partial(run_row, epochs=args.epochs, out=args.out, smoke=args.smoke)
    rows = run_rows(ROWS, row, args.out / "results.json")
    write_docs(rows, args.epochs, load_before, docs_page(args))


if __name__ == "__main__":
    main()
