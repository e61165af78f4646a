"""Order-aware methods in full fine-tuning's budget: direction-only data, 12 epochs each.

The data (:mod:`vidtl.data.tools.direction_dataset`, as in ``benchmarks/tsm_defaults.py``): a
textured patch moving left, right, up or down over a textured background, wrapping around from
a random start, so no single frame tells the direction (order-blind models stay at 25%). 72
train / 24 test videos of 32 frames at 112 px. Every row trains EfficientNet-Lite0 (bundled
ImageNet weights) with 8 segments, 112 px, flip off, for ``--epochs`` (12) unless the row says
otherwise, and scores the test split with the final checkpoint (no selection on the test split).

Rows ``<method>`` run each method with today's defaults, frozen where the method says so
(``finetune=adapter``: ST-Adapter, LoRA + TSM, EVL; full fine-tuning: TSM, transformer,
LSTM); rows ``<method>, adapter LR x1`` run the adapters at the head's learning rate (vidtl
0.4's ``finetune.adapter_lr_scale``), the factor that kept them near chance in this budget
(and ``x10``: too far); ``lora_tsm, LoRA LR x3`` gives LoRA the adapters' 3x, which it
does not take;
rows ``<method>, 36 epochs`` measure the budget of the methods that miss the target in 12.

    python benchmarks/adapter_budget.py                     # every row (about 4 min a row, 2 cores)
    python benchmarks/adapter_budget.py --rows st_adapter   # some rows
    python benchmarks/adapter_budget.py --reuse             # the table from finished runs
    python benchmarks/adapter_budget.py --smoke --docs /tmp/page.md  # a tiny run (tests)

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
    run_metrics,
    train_command,
    trained_minutes,
)

TABLE = Table("benchmarks/adapter_budget.py")
TARGET = 0.85
ST_ADAPTER = ["finetune=adapter", "model/temporal=st_adapter"]
LORA_TSM = ["finetune=adapter", "model/lora=default", "model/temporal=tsm"]
EVL = ["finetune=adapter", "model/temporal=evl"]
OLD_SCALE = "finetune.adapter_lr_scale=1"
# name: (method, what learns, overrides)
ROWS: dict[str, tuple[str, str, list[str]]] = {
    "tsm": ("TSM", "everything", ["model/temporal=tsm"]),
    "st_adapter": ("ST-Adapter", "adapters, head", ST_ADAPTER),
    "lora_tsm": ("LoRA + TSM", "LoRA, head", LORA_TSM),
    "evl": ("EVL", "decoder, head", EVL),
    "transformer": ("transformer", "everything", ["model/temporal=transformer"]),
    "lstm": ("LSTM", "everything", ["model/temporal=lstm"]),
    "st_adapter, adapter LR x1": ("ST-Adapter", "adapters, head", [*ST_ADAPTER, OLD_SCALE]),
    "st_adapter, adapter LR x10": ("ST-Adapter", "adapters, head",
                                   [*ST_ADAPTER, "finetune.adapter_lr_scale=10"]),
    "lora_tsm, LoRA LR x3": ("LoRA + TSM", "LoRA, head",
                             [*LORA_TSM, "finetune.lora_lr_scale=3"]),
    "evl, adapter LR x1": ("EVL", "decoder, head", [*EVL, OLD_SCALE]),
    # the budget of the methods that miss the target in 12 epochs
    "transformer, 36 epochs": ("transformer", "everything",
                               ["model/temporal=transformer", "trainer.max_epochs=36"]),
    "lstm, 36 epochs": ("LSTM", "everything", ["model/temporal=lstm", "trainer.max_epochs=36"]),
    "evl, 36 epochs": ("EVL", "decoder, head", [*EVL, "trainer.max_epochs=36"]),
    "lora_tsm, 36 epochs": ("LoRA + TSM", "LoRA, head", [*LORA_TSM, "trainer.max_epochs=36"]),
}
COMMON = ["data=folder", "data.num_frames=8", "data.crop_size=112", "data.short_side=112",
          "data.flip=false", "data.num_workers=2", "logger=none", "callbacks.progress_bar=null",
          "test=false"]
SMOKE = ["model/backbone=timm", "model.backbone.name=test_resnet",
         "model.backbone.pretrained=false", "data.num_frames=2", "data.crop_size=32",
         "data.short_side=32", "data.num_workers=0", "data.persistent_workers=false",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


def row_overrides(name: str, epochs: int, data_root: Path, smoke: bool) -> list[str]:
    """Every override of the row's ``vidtl-train`` run (a key set twice keeps the later
    value, so a row may set its own epochs)."""
    ordered = [*COMMON, f"trainer.max_epochs={epochs}", *ROWS[name][2],
               *(SMOKE if smoke else []), f"data.root={data_root}"]
    return list({o.split("=", 1)[0]: o for o in ordered}.values())


def run_row(name: str, epochs: int, out: Path, data_root: Path, smoke: bool,
            reuse: bool) -> dict:
    run_dir = out / name.replace(" ", "_").replace(",", "")
    overrides = row_overrides(name, epochs, data_root, smoke)
    minutes = trained_minutes(overrides, run_dir, reuse)
    metrics = run_metrics(run_dir)
    epochs_run = int(next(o for o in overrides if o.startswith("trainer.max_epochs="))
                     .split("=")[1])
    return {"row": name, "method": ROWS[name][0], "learns": ROWS[name][1],
            "overrides": ROWS[name][2], "command": train_command(overrides),
            "table": table_key(smoke), "epochs": epochs_run, "minutes": minutes,
            "trainable_share": metrics["trainable_share"],
            "test_top1": final_test_top1(run_dir)}


def write_docs(results: list[dict], docs: Path | None) -> None:
    lines = [f"{written_by()}; test split (24 videos, one is 4.2 points) scored with the final "
             f"checkpoint, chance 0.25, target {TARGET}. Minutes: wall time of the whole run, "
             "with other runs sharing the 2 cores (two to five training processes at once).", "",
             "| row | method | learns | trained parameters | epochs | test top-1 | target met "
             "| minutes | overrides |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        met = "yes" if r["test_top1"] >= TARGET else "no"
        lines.append(
            f"| {r['row']} | {r['method']} | {r['learns']} | {100 * r['trainable_share']:.1f}% "
            f"| {r['epochs']} | {r['test_top1']:.3f} | {met} | {r['minutes']:.1f} | "
            + " ".join(f"`{o}`" for o in r["overrides"]) + " |")
    lines += command_list({r["row"]: r["command"] for r in results})
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "rows tsm and st_adapter, tiny data, 1 epoch")
    add_row_options(parser, list(ROWS), REPO / "logs" / "benchmarks" / "adapter_budget")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.rows = args.rows or list(ROWS)
    if args.smoke:
        args.rows, args.epochs, args.out = ["tsm", "st_adapter"], 1, args.out / "smoke"
    data_root = direction_data(args.out, args.smoke)
    row = partial(run_row, epochs=args.epochs, out=args.out, data_root=data_root,
                  smoke=args.smoke, reuse=args.reuse)
    results = run_rows(args.rows, row, args.out / "results.json")
    write_docs(this_table(results, ROWS, args.smoke), docs_page(args))


if __name__ == "__main__":
    main()
