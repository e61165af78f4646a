"""Which defaults slow temporal learning: TSM on direction-only data, one factor per row.

The data (:mod:`vidtl.data.tools.direction_dataset`): a textured patch moving left, right, up or
down over a textured background, wrapping around the edges from a random start, so no single
frame tells the direction (order-blind models stay at 25%). 72 train / 24 test videos of 32
frames at 112 px. Every row trains ``model/temporal=tsm`` on EfficientNet-Lite0 (bundled
ImageNet weights) with 8 segments, 112 px, flip off, for ``--epochs`` (12), and scores the test
split with the final checkpoint (no selection on the test split).

Row ``0.2 defaults`` pins vidtl 0.2's defaults (SGD at 0.01, 1 warm-up epoch, dropout 0.5,
multi-scale crops, shifts in residual blocks only); each other row changes one factor of it;
``all changes`` applies every change that helped; ``defaults`` runs today's defaults.

    python benchmarks/tsm_defaults.py                  # every row (about 2 min a row, 2 cores)
    python benchmarks/tsm_defaults.py --rows defaults  # some rows
    python benchmarks/tsm_defaults.py --smoke --docs /tmp/page.md  # a tiny run (tests)

Results go to ``<out>/results.json`` and to docs/benchmarks.md (or ``--docs``) between this
benchmark's markers, with the command that wrote the table and each row's full command.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from docs_section import REPO, benchmark_parser, command_list, docs_page, table_key
from runner import Table, run_rows, this_table, written_by
from training_rows import (
    add_row_options,
    direction_data,
    final_test_top1,
    train_command,
    train_row,
)

TABLE = Table("benchmarks/tsm_defaults.py")

OLD_DEFAULTS = ["optimizer=sgd", "optimizer.lr=0.01", "scheduler.warmup_epochs=1",
                "model.dropout=0.5", "data.train_crop=multi_scale",
                "model.temporal.blocks=residual", "finetune.freeze_bn=false"]


def changed(*overrides: str) -> list[str]:
    """The 0.2 defaults with some keys changed."""
    keys = {o.split("=")[0] for o in overrides}
    kept = [o for o in OLD_DEFAULTS if o.split("=")[0] not in keys]
    if any(o.startswith("optimizer=") for o in overrides):
        kept = [o for o in kept if not o.startswith("optimizer.")]
    return [*kept, *overrides]


ROWS: dict[str, list[str]] = {
    "0.2 defaults": OLD_DEFAULTS,
    "AdamW 1e-3": changed("optimizer=adamw", "optimizer.lr=1e-3"),
    "SGD 0.04": changed("optimizer.lr=0.04"),
    "no warm-up": changed("scheduler.warmup_epochs=0"),
    "dropout 0": changed("model.dropout=0"),
    "no crop augmentation": changed("data.train_crop=center"),
    "shift in every block": changed("model.temporal.blocks=all"),
    "BatchNorm frozen": changed("finetune.freeze_bn=true"),
    "all changes": changed("optimizer=adamw", "optimizer.lr=1e-3",
                           "model.temporal.blocks=all"),
    "defaults": [],
}
COMMON = ["data=folder", "data.num_frames=8", "data.crop_size=112", "data.short_side=112",
          "data.flip=false", "data.num_workers=2", "model/temporal=tsm", "logger=none",
          "callbacks.progress_bar=null", "test=false"]
SMOKE = ["model/backbone=timm", "model.backbone.name=test_resnet",
         "model.backbone.pretrained=false", "data.num_frames=2", "data.crop_size=32",
         "data.short_side=32", "data.num_workers=0", "data.persistent_workers=false",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


def row_overrides(name: str, epochs: int, data_root: Path, smoke: bool) -> list[str]:
    """Every override of the row's ``vidtl-train`` run."""
    return [*COMMON, *ROWS[name], f"trainer.max_epochs={epochs}", *(SMOKE if smoke else []),
            f"data.root={data_root}"]


def run_row(name: str, epochs: int, out: Path, data_root: Path, smoke: bool) -> dict:
    overrides = row_overrides(name, epochs, data_root, smoke)
    minutes = train_row(overrides, out / name.replace(" ", "_"))
    return {"row": name, "overrides": ROWS[name], "command": train_command(overrides),
            "table": table_key(smoke), "minutes": minutes,
            "test_top1": final_test_top1(out / name.replace(" ", "_"))}


def write_docs(results: list[dict], epochs: int, docs: Path | None) -> None:
    lines = [f"{written_by()}; {epochs} epochs, test split scored with the final checkpoint, "
             "chance 0.25.", "",
             "Row `0.2 defaults` runs " + " ".join(f"`{o}`" for o in OLD_DEFAULTS) + "; the "
             "others name what they change of it. Minutes: wall time, with other benchmarks "
             "sharing the 2 cores.", "",
             "| row | test top-1 | minutes | changes |", "|---|---|---|---|"]
    for r in results:
        own = [o for o in r["overrides"] if o not in OLD_DEFAULTS]
        changes = (" ".join(f"`{o}`" for o in own) if r["row"] != "defaults"
                   else "none: today's defaults")
        lines.append(f"| {r['row']} | {r['test_top1']:.3f} | {r['minutes']:.1f} | {changes} |")
    lines += command_list({r["row"]: r["command"] for r in results})
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "rows 0.2 defaults and defaults, tiny data, 1 epoch")
    add_row_options(parser, list(ROWS), REPO / "logs" / "benchmarks" / "tsm_defaults",
                    reuse=False)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.rows = args.rows or list(ROWS)
    if args.smoke:
        args.rows, args.epochs, args.out = ["0.2 defaults", "defaults"], 1, args.out / "smoke"
    data_root = direction_data(args.out, args.smoke)
    row = partial(run_row, epochs=args.epochs, out=args.out, data_root=data_root,
                  smoke=args.smoke)
    results = run_rows(args.rows, row, args.out / "results.json")
    write_docs(this_table(results, ROWS, args.smoke), args.epochs, docs_page(args))


if __name__ == "__main__":
    main()
