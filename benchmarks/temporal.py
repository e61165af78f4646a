"""Temporal modules and fine-tuning schedules on the synthetic dataset, same budget each.

For each row this runs ``python -m vidtl.train`` (the embedded default: 8 TSN segments, 96 px,
CPU) with one change and a common epoch budget (``--epochs``, 16 by default), then predicts the
test split with the final checkpoint and reports accuracy overall and on the six classes that
form order-only pairs (MoveLeft/Right, Rotate(Counter)Clockwise, ZoomIn/Out; chance within a pair
is 50%).

    python benchmarks/temporal.py                 # all rows, 16 epochs (about 1.5 h on 2 cores)
    python benchmarks/temporal.py --epochs 6      # the default run's budget
    python benchmarks/temporal.py --rows avg tsm  # some rows
    python benchmarks/temporal.py --smoke         # a tiny run that checks the script (tests)

Results are written to docs/benchmarks.md between the markers of this benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from docs_section import write_section

REPO = Path(__file__).resolve().parents[1]
ROWS: dict[str, list[str]] = {
    "avg": ["model/temporal=avg"],
    "attention": ["model/temporal=attention"],
    "transformer": ["model/temporal=transformer"],
    "lstm": ["model/temporal=lstm"],
    "tsm": ["model/temporal=tsm"],
    "tsm_linear_probe": ["model/temporal=tsm", "finetune=linear_probe"],
    "tsm_gradual_unfreeze": ["model/temporal=tsm", "finetune=gradual_unfreeze"],
    "tsm_random_init": ["model/temporal=tsm", "model.backbone.pretrained=false"],
    "tsm_random_init_linear_probe": ["model/temporal=tsm", "model.backbone.pretrained=false",
                                     "finetune=linear_probe"],
    # Parameter-efficient rows: the backbone frozen, only the adaptation parameters learn.
    "st_adapter_frozen": ["model/temporal=st_adapter", "finetune=adapter", "optimizer=adamw",
                          "optimizer.lr=1e-3"],
    "evl_frozen": ["model/temporal=evl", "finetune=adapter", "optimizer=adamw",
                   "optimizer.lr=1e-3"],
    "lora_tsm": ["model/temporal=tsm", "model/lora=default", "finetune=adapter",
                 "optimizer=adamw", "optimizer.lr=1e-3"],
}
# Rows with their own table (docs/benchmarks.md keeps the older rows' table as it was measured).
EFFICIENT_ROWS = ("st_adapter_frozen", "evl_frozen", "lora_tsm")
PAIR_CLASSES = 6  # the first six classes of the synthetic dataset form the order-only pairs


def markers(epochs: int, efficient: bool = False) -> tuple[str, str]:
    """The comments that delimit the table of one epoch budget in docs/benchmarks.md (the
    parameter-efficient rows have a table of their own)."""
    name = f"benchmarks/temporal.py --epochs {epochs}" + (" efficient" if efficient else "")
    return f"<!-- {name}: start -->", f"<!-- {name}: end -->"


def predict_test(checkpoint_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and predictions of the test split, from a vidtl checkpoint (its own test
    protocol: views scored and averaged as vidtl-eval does)."""
    from vidtl.assembly.data import build_datamodule
    from vidtl.evaluation.views import aggregate_views, score_views
    from vidtl.inference.checkpoint_model import load_trained_model

    model = load_trained_model(checkpoint_path)
    module = model.module
    datamodule = build_datamodule(model.config.data)
    labels, predictions = [], []
    with torch.no_grad():
        for views, target, _ in datamodule.test_dataloader():
            logits = score_views(views, module.score_clips, module.view_chunk)
            predictions.append(aggregate_views(logits, module.view_aggregation).argmax(-1))
            labels.append(target)
    return torch.cat(labels), torch.cat(predictions)


# --smoke: a tiny dataset and model, a few steps; checks that the script runs end to end.
SMOKE = ["data.synthetic.groups=2", "data.synthetic.clips_per_group=1",
         "data.synthetic.num_frames=12", "data.synthetic.width=64", "data.synthetic.height=48",
         "data.num_frames=2", "data.crop_size=32", "data.short_side=32", "data.num_workers=0",
         "data.persistent_workers=false", "model/backbone=timm",
         "model.backbone.name=test_resnet", "model.backbone.pretrained=false",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "logger=none",
         "callbacks.progress_bar=null", "test=false"]


def row_overrides(name: str, epochs: int, smoke: bool = False) -> list[str]:
    """The row's changes to the default run, with the common epoch budget."""
    return [*ROWS[name], f"trainer.max_epochs={epochs}", *(SMOKE if smoke else [])]


def run_row(name: str, epochs: int, out: Path, data_dir: Path, reuse: bool = False,
            smoke: bool = False) -> dict:
    overrides = [*row_overrides(name, epochs, smoke), f"hydra.run.dir={out / name}",
                 f"paths.data_dir={data_dir}"]
    command = [sys.executable, "-m", "vidtl.train", *overrides]
    start = time.perf_counter()
    finished = (out / name / "metrics.json").is_file()
    if not (reuse and finished):
        subprocess.run(command, check=True, cwd=REPO,
                       env={**os.environ, "WANDB_MODE": "disabled"}, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start if not (reuse and finished) else float("nan")
    metrics = json.loads((out / name / "metrics.json").read_text())
    labels, predictions = predict_test(out / name / "checkpoints" / "last.ckpt")
    correct = predictions == labels
    pairs = labels < PAIR_CLASSES
    return {
        "row": name,
        "command": "python -m vidtl.train " + " ".join(row_overrides(name, epochs, smoke)),
        "test_top1": correct.float().mean().item(),
        "pairs_top1": correct[pairs].float().mean().item(),
        "others_top1": correct[~pairs].float().mean().item(),
        "reported_test_top1": metrics.get("test/top1"),
        "train_clips_per_s": metrics.get("train_clips_per_s"),
        "trainable_share": metrics.get("trainable_share"),
        "minutes": seconds / 60,
    }


def write_docs(results: list[dict], epochs: int, efficient: bool = False) -> None:
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
               f"no GPU, torch {torch.__version__}, Python {platform.python_version()}")
    start, end = markers(epochs, efficient)
    lines = [
        start,
        f"Machine: {machine}. Written by `python benchmarks/temporal.py --epochs {epochs}` on "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "| row | test top-1 | order-only pairs (6 classes) | other 2 classes | trained "
        "parameters | command |",
        "|---|---|---|---|---|---|",
    ]
    # Speeds stay in results.json: these runs share the machine with other work, so only
    # the accuracies are comparable across rows (docs/benchmarks.md has the speed figures).
    for r in results:
        share = r.get("trainable_share")
        trained = f"{100 * share:.1f}%" if share is not None else "-"
        lines.append(
            f"| {r['row']} | {r['test_top1']:.3f} | {r['pairs_top1']:.3f} | "
            f"{r['others_top1']:.3f} | {trained} | `{r['command']}` |"
        )
    lines.append(end)
    write_section(lines, start, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=16, help="the common budget of every row")
    parser.add_argument("--out", type=Path, help="default: logs/benchmarks/temporal/epochs<N>")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--reuse", action="store_true",
                        help="evaluate a row's finished run (metrics.json) instead of training "
                             "it again (after an interruption)")
    parser.add_argument("--smoke", action="store_true",
                        help="rows avg and tsm on a tiny dataset for 1 epoch; docs untouched")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.epochs = ["avg", "tsm"], 1
    folder = "smoke" if args.smoke else f"epochs{args.epochs}"
    out = args.out or REPO / "logs" / "benchmarks" / "temporal" / folder
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.rows:
        data_dir = out / "data" if args.smoke else args.data_dir
        results[name] = run_row(name, args.epochs, out, data_dir, args.reuse, args.smoke)
        print(json.dumps(results[name]), flush=True)
        results_file.write_text(json.dumps(results, indent=2))  # nothing lost if a row fails
    if not args.smoke:
        for efficient in (False, True):
            rows = [results[name] for name in ROWS
                    if name in results and (name in EFFICIENT_ROWS) == efficient]
            if rows:
                write_docs(rows, args.epochs, efficient)


if __name__ == "__main__":
    main()
