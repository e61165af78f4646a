"""Training speed of ResNet-50 TSN-8 (batch 32) in fp32 eager against bf16, fp16,
channels-last and torch.compile, all in one run on one GPU.

    python benchmarks/precision.py            # on a GPU machine; writes docs/benchmarks.md
    python benchmarks/precision.py --smoke --docs /tmp/page.md  # a tiny CPU run (tests)

Each row is one `vidtl-bench-data` run: the model-only ceiling (resident batches, no data
cost) and end-to-end training from the synthetic dataset's loader. Results go to
logs/benchmarks/precision/results.json (``--out``) and docs/benchmarks.md (or ``--docs``;
between this script's markers), with the command that wrote the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from docs_section import REPO, benchmark_parser, command_list, docs_page, machine
from runner import Table, command_row, run_rows, save_results, written_by

TABLE = Table("benchmarks/precision.py")

VARIANTS = {
    "fp32 eager": ["precision=32", "channels_last=false", "compile=false"],
    "bf16-mixed": ["precision=bf16-mixed", "channels_last=false", "compile=false"],
    "16-mixed": ["precision=16-mixed", "channels_last=false", "compile=false"],
    "bf16 + channels_last": ["precision=bf16-mixed", "channels_last=true", "compile=false"],
    "bf16 + channels_last + compile": ["precision=bf16-mixed", "channels_last=true",
                                       "compile=true"],
}


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "a tiny model on the CPU")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "precision")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    common = [sys.executable, "-m", "vidtl.cli.bench_data", "measure_model=true"]
    if args.smoke:
        variants = {"bf16 + channels_last": VARIANTS["bf16 + channels_last"]}  # fp32 on a CPU
        common += ["device=cpu", "model/backbone=timm", "model.backbone.name=test_efficientnet",
                   "model.backbone.pretrained=false", "data.num_frames=2", "data.crop_size=32",
                   "data.short_side=32", "data.batch_size=4", "data.num_workers=0",
                   "clips=8", "steps=3", "warmup_steps=1"]
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --smoke to check the script on a CPU")
        variants = VARIANTS
        common += ["model/backbone=resnet50", "model.backbone.pretrained=false",
                   "data.num_frames=8", "data.batch_size=32",
                   f"data.num_workers={os.cpu_count() or 1}", "clips=512", "steps=50",
                   "warmup_steps=10"]
    rows = run_rows(variants, lambda name: command_row([*common, *variants[name]]))
    baseline = rows.get("fp32 eager", next(iter(rows.values())))["model_clips_per_s"]
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke,
               "rows": rows,
               "over_fp32": {k: r["model_clips_per_s"] / baseline for k, r in rows.items()}}
    save_results(args.out / ("smoke.json" if args.smoke else "results.json"), results)
    write_docs(results, docs_page(args))


def write_docs(results: dict, docs: Path | None) -> None:
    lines = [f"{written_by(results['machine'], results['date'])}. ResNet-50 TSN-8, batch 32, "
             "224 px.", "",
             "| variant | model-only clips/s | vs fp32 eager | end-to-end clips/s |",
             "|---|---|---|---|"]
    for name, row in results["rows"].items():
        lines.append(f"| {name} | {row['model_clips_per_s']:.0f} | "
                     f"{results['over_fp32'][name]:.2f}x | {row['train_clips_per_s']:.0f} |")
    lines += command_list({name: row["command"] for name, row in results["rows"].items()})
    TABLE.write(lines, docs)


if __name__ == "__main__":
    main()
