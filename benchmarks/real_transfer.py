"""Transfer to real footage: UCF101 clips (../shared/data/ucf101_subset20), one recipe per row.

20 classes, 138 train / 59 test videos, split by group. Every row: EfficientNet-Lite0 with its
bundled ImageNet weights, 8 segments, 112 px crops (short side 128), AdamW at 1e-3, ``--epochs``
(12) epochs, validation only after the last one; the test split is scored with the final
checkpoint (no selection on it). Rows differ in what learns and how time is modelled.

    python benchmarks/real_transfer.py                      # every row (about 2 h on 2 idle cores)
    python benchmarks/real_transfer.py --rows st_adapter    # some rows
    python benchmarks/real_transfer.py --smoke --docs /tmp/page.md  # a tiny run (tests)

The data folder is ``--data`` (default ../shared/data/ucf101_subset20 beside the checkout, or
under $VIDTL_SHARED). Results go to ``<out>/results.json`` and to docs/benchmarks.md (or
``--docs``) between this benchmark's markers, with the command that wrote the table and each
row's full command.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

from docs_section import REPO, SHARED, benchmark_parser, command_list, docs_page, table_key
from runner import Table, run_rows, this_table, written_by
from training_rows import (
    add_row_options,
    final_test_top1,
    run_metrics,
    train_command,
    trained_minutes,
)
from tsm_defaults import OLD_DEFAULTS

TABLE = Table("benchmarks/real_transfer.py")
OLD_ADAPTER_RATE = "finetune.adapter_lr_scale=1"
ROWS: dict[str, tuple[str, list[str]]] = {
    "linear_probe_video": ("linear probe, head on decoded video",
                           ["finetune=linear_probe", "model/temporal=avg"]),
    "linear_probe_cached": ("linear probe, head on cached features",
                            ["finetune=linear_probe", "model/temporal=avg",
                             "feature_cache.enabled=true"]),
    "full_avg": ("full fine-tuning, average (TSN)", ["finetune=full", "model/temporal=avg"]),
    "full_tsm": ("full fine-tuning, TSM", ["finetune=full", "model/temporal=tsm"]),
    "full_tsm_0.2_defaults": ("full fine-tuning, TSM, vidtl 0.2's defaults",
                              ["finetune=full", "model/temporal=tsm", *OLD_DEFAULTS]),
    # the temporal module's adapters measured at vidtl 0.4's learning rate (the head's); 0.5's
    # default, 3x, is in the table of benchmarks/recipes.py (recipe adapter)
    "st_adapter": ("frozen backbone + ST-Adapter, adapter LR x1",
                   ["finetune=adapter", "model/temporal=st_adapter", OLD_ADAPTER_RATE]),
    "evl": ("frozen backbone + EVL decoder, adapter LR x1",
            ["finetune=adapter", "model/temporal=evl", OLD_ADAPTER_RATE]),
    "lora_tsm": ("LoRA (rank 8) + TSM, backbone frozen",
                 ["finetune=adapter", "model/lora=default", "model/temporal=tsm"]),
    "linear_probe_cached_transformer": ("temporal transformer on cached features",
                                        ["finetune=linear_probe", "model/temporal=transformer",
                                         "feature_cache.enabled=true"]),
    "linear_probe_cached_224": ("linear probe, cached features, 224 px",
                                ["finetune=linear_probe", "model/temporal=avg",
                                 "feature_cache.enabled=true", "data.crop_size=224",
                                 "data.short_side=256"]),
    "lite2_linear_probe_cached_224": ("EfficientNet-Lite2 linear probe, cached features, 224 px",
                                      ["model/backbone=efficientnet_lite2",
                                       "finetune=linear_probe", "model/temporal=avg",
                                       "feature_cache.enabled=true", "data.crop_size=224",
                                       "data.short_side=256"]),
}
COMMON = ["data=csv", "data.train_list=train.csv", "data.val_list=test.csv",
          "data.test_list=test.csv", "data.num_frames=8", "data.crop_size=112",
          "data.short_side=128", "data.num_workers=2", "optimizer=adamw", "optimizer.lr=1e-3",
          "logger=none", "callbacks.progress_bar=null", "test=false"]
SMOKE = ["model/backbone=timm", "model.backbone.name=test_resnet",
         "model.backbone.pretrained=false", "data.num_frames=2", "data.crop_size=32",
         "data.short_side=32", "data.num_workers=0", "data.persistent_workers=false",
         "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


def row_overrides(name: str, epochs: int, data: Path, out: Path, smoke: bool) -> list[str]:
    """Every override of the row's ``vidtl-train`` run: the common settings, then the row's (a
    key set twice keeps the later value)."""
    ordered = [*COMMON, *ROWS[name][1], f"trainer.max_epochs={epochs}",
               f"trainer.check_val_every_n_epoch={epochs}", *(SMOKE if smoke else []),
               f"data.root={data}", f"paths.data_dir={out / 'data'}"]
    return list({o.split("=", 1)[0]: o for o in ordered}.values())


def run_row(name: str, epochs: int, out: Path, data: Path, smoke: bool, reuse: bool) -> dict:
    run_dir = out / name
    overrides = row_overrides(name, epochs, data, out, smoke)
    minutes = trained_minutes(overrides, run_dir, reuse)
    metrics = run_metrics(run_dir)
    train_videos = sum(1 for _ in (data / "train.csv").open()) - 1
    clips_per_s = metrics.get("train_clips_per_s")
    return {"row": name, "recipe": ROWS[name][0], "overrides": ROWS[name][1],
            "command": train_command(overrides), "table": table_key(smoke),
            "test_top1": final_test_top1(run_dir),
            "trainable_params": metrics["trainable_params"],
            "trainable_share": metrics["trainable_share"],
            "epoch_seconds": train_videos / clips_per_s if clips_per_s else None,
            "minutes": minutes, "measured": time.strftime("%Y-%m-%d")}


def write_docs(results: list[dict], epochs: int, docs: Path | None) -> None:
    lines = [f"{written_by()}; {epochs} epochs, final checkpoint on the 59 test "
             "videos (one video is 1.7 points). Epoch: training time per epoch (loading "
             "included, validation and feature extraction excluded); minutes: the whole run; "
             "measured: the day the row ran (rows not run again keep theirs).",
             "",
             "| recipe | test top-1 | trained parameters | epoch (s) | minutes | measured "
             "| overrides |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        epoch = f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-"
        lines.append(
            f"| {r['recipe']} | {r['test_top1']:.3f} | {r['trainable_params'] / 1e6:.2f}M "
            f"({100 * r['trainable_share']:.1f}%) | {epoch} | {r['minutes']:.1f} | "
            f"{r.get('measured', '-')} | " + " ".join(f"`{o}`" for o in r["overrides"]) + " |")
    lines += command_list({r["recipe"]: r["command"] for r in results})
    TABLE.write(lines, docs)


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "rows full_tsm and st_adapter, a few steps")
    add_row_options(parser, list(ROWS), REPO / "logs" / "benchmarks" / "real_transfer")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "ucf101_subset20")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.rows = args.rows or list(ROWS)
    if args.smoke:
        args.rows, args.epochs, args.out = ["full_tsm", "st_adapter"], 1, args.out / "smoke"
    if not (args.data / "train.csv").is_file():
        raise SystemExit(f"{args.data} has no train.csv: give --data (see the docstring)")
    args.out.mkdir(parents=True, exist_ok=True)
    row = partial(run_row, epochs=args.epochs, out=args.out, data=args.data.resolve(),
                  smoke=args.smoke, reuse=args.reuse)
    results = run_rows(args.rows, row, args.out / "results.json")
    write_docs(this_table(results, ROWS, args.smoke), args.epochs, docs_page(args))


if __name__ == "__main__":
    main()
