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
    python benchmarks/tsm_defaults.py --smoke          # a tiny run that checks the script

Results go to docs/benchmarks.md between this benchmark's markers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from docs_section import write_section
from training_rows import REPO, final_test_top1, machine, record, train_row

START = "<!-- benchmarks/tsm_defaults.py: start -->"
END = "<!-- benchmarks/tsm_defaults.py: end -->"

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


def run_row(name: str, epochs: int, out: Path, data_root: Path, smoke: bool) -> dict:
    overrides = [*COMMON, *ROWS[name], f"trainer.max_epochs={epochs}", *(SMOKE if smoke else []),
                 f"data.root={data_root}"]
    run_dir = out / name.replace(" ", "_")
    minutes = train_row(overrides, run_dir)
    return {"row": name, "overrides": ROWS[name], "test_top1": final_test_top1(run_dir),
            "minutes": minutes}


def write_docs(results: list[dict], epochs: int) -> None:
    lines = [START,
             f"Machine: {machine()}. Written by `python benchmarks/tsm_defaults.py` on "
             f"{time.strftime('%Y-%m-%d')}; {epochs} epochs, test split scored with the final "
             "checkpoint, chance 0.25.", "",
             "Row `0.2 defaults` runs " + " ".join(f"`{o}`" for o in OLD_DEFAULTS) + "; the "
             "others name what they change of it. Minutes: wall time, with other benchmarks "
             "sharing the 2 cores.", "",
             "| row | test top-1 | minutes | changes |", "|---|---|---|---|"]
    for r in results:
        own = [o for o in r["overrides"] if o not in OLD_DEFAULTS]
        changes = (" ".join(f"`{o}`" for o in own) if r["row"] != "defaults"
                   else "none: today's defaults")
        lines.append(f"| {r['row']} | {r['test_top1']:.3f} | {r['minutes']:.1f} | {changes} |")
    lines.append(END)
    write_section(lines, START, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "tsm_defaults")
    parser.add_argument("--smoke", action="store_true", help="two rows, tiny data; docs untouched")
    args = parser.parse_args()
    from vidtl.data.tools.direction_dataset import DirectionSpec, ensure_direction_dataset

    if args.smoke:
        args.rows, args.epochs, args.out = ["0.2 defaults", "defaults"], 1, args.out / "smoke"
        spec = DirectionSpec(train_per_class=2, test_per_class=1, num_frames=8, size=32,
                             patch=8)
    else:
        spec = DirectionSpec()
    data_root = ensure_direction_dataset(args.out / "data", spec)
    results: dict = {}
    for name in args.rows:
        row = run_row(name, args.epochs, args.out, data_root, args.smoke)
        print(json.dumps(row), flush=True)
        results = record(args.out / "results.json", name, row)
    if not args.smoke:
        write_docs([results[n] for n in ROWS if n in results], args.epochs)


if __name__ == "__main__":
    main()
