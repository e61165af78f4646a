"""``results.csv`` of ``vidtl-compare``: one row per recipe, written again after every recipe.

A row holds the recipe, its status (``done``, ``done; views failed: 3x3 (exit N)``,
``failed (exit N)``), its headline
metric on the test split for every view count asked for (``test/top1``, ``test/top1 3x3``...;
``mAP`` for ``task=multilabel``), its ``val/`` metric, the minutes it took and the minutes
estimated before it started, the share of parameters it trained, the checkpoint it evaluated,
its run folder, and every other number of its ``metrics.json``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from vidtl.data.loading.datamodule import CARVED_FROM_TRAIN, OWN_VALIDATION_SET, TEST_LIST
from vidtl.sweeps.sweep_table import read_metrics, write_rows_csv

RESULTS = "results.csv"
VALIDATED_ON = (TEST_LIST, CARVED_FROM_TRAIN, OWN_VALIDATION_SET)
SINGLE_VIEW = "1x1"


def run_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a recipe's run evaluated, only as a plain ``.ckpt`` file of its own
    ``checkpoints/`` folder with a plain name (``metrics.json`` is read as a file vidtl did not
    write: a path elsewhere, a link or an odd name is not followed)."""
    named = (read_metrics(run_dir / "metrics.json") or {}).get("evaluated_checkpoint")
    if not isinstance(named, str) or not named:
        return None
    name = Path(named).name
    if not re.fullmatch(r"[\w.-]+\.ckpt", name, flags=re.ASCII):
        return None
    candidate = run_dir / "checkpoints" / name
    if candidate.is_symlink() or not candidate.is_file():
        return None
    return candidate


def number(value: Any) -> float | str:
    """A metric as a finite number, else an empty cell (a file's strings never reach the
    table, or a spreadsheet)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return ""


def headline(metrics: dict[str, Any]) -> str:
    """``mAP`` for multi-label runs (their metrics hold it), else ``top1``."""
    return "mAP" if any(k.endswith("/mAP") for k in metrics) else "top1"


def recipe_row(recipe: str, run_dir: Path, status: str, minutes: float | None,
               estimate: float | None, views: dict[str, dict[str, Any] | None],
               own_view: str = SINGLE_VIEW) -> dict:
    """The row of one recipe; ``views`` maps ``"3x3"`` to that evaluation's metrics (the
    ``own_view`` the training run tested with is its ``test/`` column)."""
    metrics = read_metrics(run_dir / "metrics.json") or {}
    metric = headline(metrics)
    row: dict[str, Any] = {"recipe": recipe, "status": status,
                           f"test/{metric} {own_view}": number(metrics.get(f"test/{metric}"))}
    for name, view_metrics in views.items():
        if name != own_view:
            row[f"test/{metric} {name}"] = number((view_metrics or {}).get(f"test/{metric}"))
    checkpoint = run_checkpoint(run_dir)
    validated_on = metrics.get("validated_on")
    row |= {f"val/{metric}": number(metrics.get(f"val/{metric}")),
            "minutes": "" if minutes is None else round(minutes, 2),
            "estimated_minutes": "" if estimate is None else round(estimate, 2),
            "trainable_share": number(metrics.get("trainable_share")),
            "validated_on": validated_on if validated_on in VALIDATED_ON else "",
            "checkpoint": "" if checkpoint is None else str(checkpoint.resolve()),
            "run_dir": str(run_dir)}
    row |= {k: v for k, v in sorted(metrics.items())
            if k not in row and number(v) != "" and re.fullmatch(r"[\w/.-]+", str(k))}
    return row


def write_recipe_table(out: Path, rows: list[dict]) -> Path:
    """``out/results.csv`` (atomically: a crash leaves the previous table)."""
    return write_rows_csv(out / RESULTS, rows)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    """The headline columns of ``rows`` as aligned text (the best test score first)."""
    if not rows:
        return "(no recipe ran)"
    headlines = list(rows[0])[2:list(rows[0]).index("minutes")]  # test/ at each view, val/
    shown = list(dict.fromkeys(k for row in rows for k in row if k in headlines
                               or k.startswith(tuple(h.split(" ")[0] + " " for h in headlines))))
    columns = ["recipe", "status", *shown, "minutes", "estimated_minutes", "trainable_share"]
    score = shown[0] if shown else "recipe"

    def rank(row: dict) -> float:
        value = row.get(score)
        return -value if isinstance(value, (int, float)) else float("inf")

    lines = [columns, *([_cell(r.get(c, "")) for c in columns] for r in sorted(rows, key=rank))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)
    if any(row.get("validated_on") == TEST_LIST for row in rows):
        text += ("\nval/ is the test list here (the data has no validation split): choose a "
                 "recipe on data.val_list= or data.val_from_train=0.1, not on these columns")
    return text
