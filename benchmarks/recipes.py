"""Recipes on real footage: ``vidtl-compare`` on ../shared/data/ucf101_subset20, with view counts.

20 classes, 138 train / 59 test videos, split by group. One ``vidtl-compare`` run trains every
recipe of ``conf/recipe/`` (``--recipes``) with the settings of ``benchmarks/real_transfer.py``
(EfficientNet-Lite0 with its bundled ImageNet weights, 8 segments, 112 px crops from a short
side of 128 unless the recipe sets its own, AdamW at 1e-3, ``--epochs`` (12) epochs,
validation only after the last), scores each final checkpoint on the test split at every
``--views`` count (1x1, 3x1, 3x3: clips x crops), and writes the table from the comparison's
``results.csv``, with its estimate of each recipe's minutes beside the minutes it took.

    python benchmarks/recipes.py                         # every recipe (about 1.5 h, 2 idle cores)
    python benchmarks/recipes.py --recipes probe,full_tsm   # some recipes
    python benchmarks/recipes.py --smoke --docs /tmp/page.md  # a tiny run (tests)

Running it again with the same ``--out`` reuses the recipes that finished (``vidtl-compare``
continues a comparison). The table goes to docs/benchmarks.md (or ``--docs``) between this
benchmark's markers, with the command that wrote it and the comparison's full command.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from docs_section import REPO, SHARED, benchmark_parser, docs_page, relative
from runner import Table, written_by

TABLE = Table("benchmarks/recipes.py")
RECIPES = "probe,probe_transformer,probe_224,adapter,full_avg,full_tsm"
VIEWS = "1x1,3x1,3x3"
COMMON = ["data=csv", "data.train_list=train.csv", "data.val_list=test.csv",
          "data.test_list=test.csv", "data.num_frames=8", "data.crop_size=112",
          "data.short_side=128", "data.num_workers=2", "optimizer=adamw", "optimizer.lr=1e-3",
          "logger=none", "callbacks.progress_bar=null"]
SMOKE = ["model/backbone=timm", "model.backbone.name=test_resnet",
         "model.backbone.pretrained=false", "data.num_frames=2", "data.crop_size=32",
         "data.short_side=32", "data.num_workers=0", "data.persistent_workers=false",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1"]


def comparison(recipes: str, views: str, epochs: int, data: Path, out: Path,
               smoke: bool) -> list[str]:
    """The ``vidtl-compare`` command line of the table."""
    return ["--recipes", recipes, "--views", views, "--out", str(out / "comparison"),
            *COMMON, f"trainer.max_epochs={epochs}",
            f"trainer.check_val_every_n_epoch={epochs}", *(SMOKE if smoke else []),
            f"data.root={data}", f"paths.data_dir={out / 'data'}"]


def read_rows(out: Path) -> list[dict]:
    with open(out / "comparison" / "results.csv", newline="") as file:
        return list(csv.DictReader(file))


def number(value: str, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}" if value not in ("", None) else "-"


def write_docs(rows: list[dict], views: list[str], epochs: int, command: str,
               docs: Path | None) -> None:
    lines = [f"{written_by()}; {epochs} epochs, final checkpoint on the 59 test videos (one "
             "video is 1.7 points), at each view count (clips x crops). Minutes: the recipe's "
             "run with its view evaluations excluded; estimated: what `vidtl-compare` printed "
             "before it started.", "",
             "| recipe | " + " | ".join(f"test top-1 {v}" for v in views)
             + " | trained parameters | minutes | estimated minutes |",
             "|---|" + "---|" * (len(views) + 3)]
    for row in rows:
        scores = [number(row.get(f"test/top1 {v}", "")) for v in views]
        share = number(str(100 * float(row["trainable_share"])), 1) if row.get(
            "trainable_share") else "-"
        lines.append(f"| {row['recipe']} ({row['status']}) | " + " | ".join(scores)
                     + f" | {share}% | {number(row['minutes'], 1)} | "
                     f"{number(row['estimated_minutes'], 1)} |")
    lines += ["", "Command (from the repository root):", "", f"`{command}`"]
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "recipes probe and full_tsm, 1 epoch of a few batches")
    parser.add_argument("--recipes", default=RECIPES, help=f"default: {RECIPES}")
    parser.add_argument("--views", default=VIEWS, help=f"default: {VIEWS}")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ucf101_subset20")
    parser.add_argument("--out", type=Path, default=REPO / "logs" / "benchmarks" / "recipes")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.smoke:
        args.recipes, args.epochs = "probe,full_tsm", 1  # the same views: the same columns
        args.out = args.out / "smoke"
    if not (args.data / "train.csv").is_file():
        raise SystemExit(f"{args.data} has no train.csv: give --data (see the docstring)")
    argv = comparison(args.recipes, args.views, args.epochs, args.data.resolve(), args.out,
                      args.smoke)
    subprocess.run([sys.executable, "-m", "vidtl.cli.compare", *argv], check=True, cwd=REPO)
    command = relative(" ".join(["vidtl-compare", *argv]))
    write_docs(read_rows(args.out), args.views.split(","), args.epochs, command,
               docs_page(args))


if __name__ == "__main__":
    main()
