"""``results.csv`` of ``vidtl-compare``: one row per recipe, written again after every recipe.

A row holds the recipe, its status (``done``, ``failed (exit N)``, ``not run``), its headline
metric on the test split for every view count asked for (``test/top1``, ``test/top1 3x3``...;
``mAP`` for ``task=multilabel``), its ``val/`` metric, the minutes it took and the minutes
estimated before it started, the share of parameters it trained, the checkpoint it evaluated,
its run folder, and every other number of its ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidtl.sweeps.sweep_table import evaluated_file, read_metrics, write_rows_csv

RESULTS = "results.csv"
SINGLE_VIEW = "1x1"


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
                           f"test/{metric} {own_view}": metrics.get(f"test/{metric}", "")}
    for name, view_metrics in views.items():
        if name != own_view:
            row[f"test/{metric} {name}"] = (view_metrics or {}).get(f"test/{metric}", "")
    row |= {f"val/{metric}": metrics.get(f"val/{metric}", ""),
            "minutes": "" if minutes is None else round(minutes, 2),
            "estimated_minutes": "" if estimate is None else round(estimate, 2),
            "trainable_share": metrics.get("trainable_share", ""),
            "checkpoint": evaluated_file(run_dir, metrics.get("evaluated_checkpoint")),
            "run_dir": str(run_dir)}
    row |= {k: v for k, v in sorted(metrics.items())
            if k not in row and isinstance(v, (int, float)) and not isinstance(v, bool)}
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
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)
