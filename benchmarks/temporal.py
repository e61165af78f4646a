"""Temporal modules and fine-tuning schedules on the synthetic dataset, same budget each.

For each row this runs ``python -m vidtl.cli.train`` (the embedded default: 8 TSN segments,
96 px, CPU) with one change and a common epoch budget (``--epochs``, 16 by default), then
predicts the test split with the final checkpoint and reports accuracy overall and on the six
classes that form order-only pairs (MoveLeft/Right, Rotate(Counter)Clockwise, ZoomIn/Out; chance
within a pair is 50%).

    python benchmarks/temporal.py                 # all rows, 16 epochs (about 1.5 h on 2 cores)
    python benchmarks/temporal.py --epochs 6      # the default run's budget
    python benchmarks/temporal.py --rows avg tsm  # some rows
    python benchmarks/temporal.py --smoke --docs /tmp/page.md  # a tiny run (tests)

Results go to ``<out>/results.json`` and to docs/benchmarks.md (or ``--docs``): a table for the
rows that train the backbone and one for the parameter-efficient rows, each between the markers
of its epoch budget, with the command that wrote it and each row's ``vidtl-train`` command.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from docs_section import REPO, benchmark_parser, docs_page, machine, table_key
from runner import Table, run_rows, this_table, written_by
from training_rows import (
    finished,
    predict_test,
    recorded_minutes,
    run_metrics,
    tiny_synthetic,
    train_command,
    train_row,
)

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
    # Parameter-efficient rows: the backbone frozen, only the adaptation parameters learn, at
    # the head's rate (as measured on 2026-11-30, before finetune=adapter's 3x default for the
    # temporal module's adapters; LoRA stays at 1x).
    "st_adapter_frozen": ["model/temporal=st_adapter", "finetune=adapter", "optimizer=adamw",
                          "optimizer.lr=1e-3", "finetune.adapter_lr_scale=1"],
    "evl_frozen": ["model/temporal=evl", "finetune=adapter", "optimizer=adamw",
                   "optimizer.lr=1e-3", "finetune.adapter_lr_scale=1"],
    "lora_tsm": ["model/temporal=tsm", "model/lora=default", "finetune=adapter",
                 "optimizer=adamw", "optimizer.lr=1e-3"],
}
# Rows with a table of their own (a frozen backbone: the share of trained parameters matters).
EFFICIENT_ROWS = ("st_adapter_frozen", "evl_frozen", "lora_tsm")
PAIR_CLASSES = 6  # the first six classes of the synthetic dataset form the order-only pairs


def table(epochs: int, efficient: bool = False) -> Table:
    """The table of one epoch budget in docs/benchmarks.md (the parameter-efficient rows have a
    table of their own)."""
    return Table(f"benchmarks/temporal.py --epochs {epochs}"
                 + (" efficient" if efficient else ""))


# --smoke: a tiny dataset and model, a few steps; checks that the script runs end to end.
SMOKE = [*tiny_synthetic("test_resnet", video_frames=12), "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "logger=none", "callbacks.progress_bar=null", "test=false"]
SMOKE_ROWS = ["tsm", "st_adapter_frozen"]  # a row of each table


def row_overrides(name: str, epochs: int, smoke: bool = False) -> list[str]:
    """The row's changes to the default run, with the common epoch budget."""
    return [*ROWS[name], f"trainer.max_epochs={epochs}", *(SMOKE if smoke else [])]


def run_row(name: str, epochs: int, out: Path, data_dir: Path, reuse: bool = False,
            smoke: bool = False) -> dict:
    """Train the row (or, with ``reuse``, take its finished run) and score the test split."""
    overrides = row_overrides(name, epochs, smoke)
    # shown only where it is not the default (vidtl's own data_dir, started from the checkout)
    shown = overrides if data_dir.resolve() == (REPO / "data").resolve() else [
        *overrides, f"paths.data_dir={data_dir}"]
    run_dir = out / name
    if reuse and finished(run_dir):
        minutes = recorded_minutes(run_dir)  # trained by an earlier invocation
    else:
        minutes = train_row([*overrides, f"paths.data_dir={data_dir}"], run_dir)
    metrics = run_metrics(run_dir)
    labels, predictions = predict_test(run_dir / "checkpoints" / "last.ckpt")
    correct = predictions == labels
    pairs = labels < PAIR_CLASSES
    return {
        "row": name,
        "command": train_command(shown),
        "table": table_key(smoke),
        "test_top1": correct.float().mean().item(),
        "pairs_top1": correct[pairs].float().mean().item(),
        "others_top1": correct[~pairs].float().mean().item(),
        "reported_test_top1": metrics.get("test/top1"),
        "train_clips_per_s": metrics.get("train_clips_per_s"),
        "trainable_share": metrics.get("trainable_share"),
        "minutes": minutes,
    }


def write_docs(results: list[dict], epochs: int, efficient: bool, docs: Path | None) -> None:
    """The table of ``results`` (rows of one table), between the markers of its epoch budget."""
    lines = [
        f"{written_by(machine(python=True))}.",
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
    table(epochs, efficient).write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "rows tsm and st_adapter_frozen (one of each table) on "
                                       "a tiny dataset for 1 epoch")
    parser.add_argument("--rows", nargs="*", choices=list(ROWS), help="default: every row")
    parser.add_argument("--epochs", type=int, default=16, help="the common budget of every row")
    parser.add_argument("--out", type=Path, help="default: logs/benchmarks/temporal/epochs<N>")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--reuse", action="store_true",
                        help="evaluate a row's finished run (metrics.json) instead of training "
                             "it again (after an interruption)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    rows = args.rows or (SMOKE_ROWS if args.smoke else list(ROWS))
    epochs = 1 if args.smoke else args.epochs  # the table keeps the budget of the command
    folder = "smoke" if args.smoke else f"epochs{args.epochs}"
    out = args.out or REPO / "logs" / "benchmarks" / "temporal" / folder
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data" if args.smoke else args.data_dir
    row = partial(run_row, epochs=epochs, out=out, data_dir=data_dir, reuse=args.reuse,
                  smoke=args.smoke)
    results = run_rows(rows, row, out / "results.json")
    for efficient in (False, True):
        same = this_table(results, [n for n in ROWS if (n in EFFICIENT_ROWS) == efficient],
                          args.smoke)
        if same:
            write_docs(same, args.epochs, efficient, docs_page(args))


if __name__ == "__main__":
    main()
