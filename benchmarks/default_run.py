"""The README's default run: ``vidtl-train`` with no arguments, from an empty folder, timed.

It generates the synthetic dataset (included in the time), fine-tunes the bundled ImageNet
EfficientNet-Lite0 with the defaults and tests it; the load average before the run is recorded,
since the wall time means little on a shared machine.

    python benchmarks/default_run.py                 # logs/benchmarks/default_run/, README
    python benchmarks/default_run.py --smoke --out /tmp/x --docs /tmp/page.md  # a tiny run

Results go to ``<out>/results.json`` and the README's table (or ``--docs``; between this script's
markers), with the command that wrote it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from docs_section import REPO, benchmark_parser, docs_page, machine
from runner import Table, save_results, written_by
from training_rows import tiny_synthetic

README = REPO / "README.md"
TABLE = Table("benchmarks/default_run.py")
SMOKE = [*tiny_synthetic("test_efficientnet", video_frames=8), "trainer.max_epochs=1"]


def run(out: Path, smoke: bool) -> dict:
    """``vidtl-train`` in an empty ``out/run`` folder; its metrics, wall time and load."""
    folder = out / "run"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vidtl.cli.train", *(SMOKE if smoke else [])],
                   cwd=folder, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "WANDB_MODE": "disabled"})
    seconds = time.perf_counter() - start
    metrics_file = next(folder.glob("logs/train/runs/*/metrics.json"))
    import vidtl

    return {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
            "vidtl": vidtl.__version__, "wall_seconds": seconds, "load_before": load,
            "metrics": json.loads(metrics_file.read_text())}


def write_readme(results: dict, docs: Path | None) -> None:
    m = results["metrics"]
    minutes, seconds = divmod(round(results["wall_seconds"]), 60)
    lines = [
        written_by(f"{results['machine']}; load average {results['load_before']:.2f} before the "
                   "run", results["date"]) + ".",
        "",
        "| vidtl | test/top1 | test/top5 | test/mean_class_acc | train_clips_per_s | wall time |",
        "|---|---|---|---|---|---|",
        f"| {results['vidtl']} | {m['test/top1']:.3f} | {m['test/top5']:.3f} | "
        f"{m['test/mean_class_acc']:.3f} | {m['train_clips_per_s']:.2f} | "
        f"{minutes} min {seconds} s |",
    ]
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "a tiny run", page=README)
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "default_run")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    results = run(args.out, args.smoke)
    save_results(args.out / ("smoke.json" if args.smoke else "results.json"), results)
    print(json.dumps(results["metrics"]), flush=True)
    write_readme(results, docs_page(args, README))


if __name__ == "__main__":
    main()
