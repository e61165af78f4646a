"""``results.csv`` in a sweep's folder: one row per job, its swept values and final metrics.

A Hydra callback (``conf/hydra/default.yaml``), so every multirun writes it when it ends: a grid
sweep, an Optuna search or a SLURM/submitit launch. A job that wrote no ``metrics.json`` (it
failed) gets a row with its values and an empty ``status`` of ``no metrics``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vidtl.core.atomic import write_text_atomic
from vidtl.data.loading.datamodule import TEST_LIST

log = logging.getLogger(__name__)

RESULTS = "results.csv"


def _overrides(job: Path) -> dict[str, str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    pairs = (str(o).split("=", 1) for o in yaml.safe_load(path.read_text()) or [])
    return {key.lstrip("+~"): value for key, value in (p for p in pairs if len(p) == 2)}


def read_metrics(path: Path) -> dict[str, Any] | None:
    """A job's ``metrics.json``; ``None`` when it is missing or not a JSON object."""
    try:
        metrics = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        log.warning("%s cannot be read as JSON; its job is listed without metrics", path)
        return None
    return metrics if isinstance(metrics, dict) else None


def evaluated_file(job: Path, evaluated: Any) -> str:
    """The checkpoint the job evaluated, where it is now: the file of that name in the job's
    own ``checkpoints/`` (so a sweep folder copied or moved names its own files), else the
    path ``metrics.json`` names; empty when neither exists (deleted)."""
    if not isinstance(evaluated, str) or not evaluated:
        return ""
    for candidate in (job / "checkpoints" / Path(evaluated).name, Path(evaluated)):
        try:
            if candidate.is_file():
                return str(candidate.resolve())  # a path that works from any folder
        except (OSError, ValueError):  # a name too long, a NUL byte
            continue
    return ""


def sweep_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (``0``, ``1``...): ``job``, the swept keys (those whose value
    differs between jobs, or every override of a single job), ``status``, the ``checkpoint``
    it evaluated (its best epoch, or its final weights: ``evaluated_weights``), what its
    ``val/`` metrics were computed on (``validated_on``: ``test list`` where the format has no
    validation split) and the numeric metrics of its ``metrics.json``."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                  key=lambda p: int(p.name))
    overrides = {job: _overrides(job) for job in jobs}
    keys = sorted({k for values in overrides.values() for k in values})
    if len(jobs) > 1:
        keys = [k for k in keys if len({values.get(k) for values in overrides.values()}) > 1]
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"job": int(job.name),
                               **{k: overrides[job].get(k, "") for k in keys}}
        metrics_file = job / "metrics.json"
        metrics = read_metrics(metrics_file)
        if metrics is not None:
            row["status"] = "done"
            row["checkpoint"] = evaluated_file(job, metrics.get("evaluated_checkpoint"))
            for key in ("evaluated_weights", "validated_on"):
                row[key] = metrics.get(key, "")
            row |= {k: v for k, v in sorted(metrics.items())
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}
        else:
            row["status"] = "no metrics"
        rows.append(row)
    return rows


def write_sweep_table(sweep_dir: Path) -> Path | None:
    """Write ``results.csv`` in ``sweep_dir``; ``None`` when it holds no job folder."""
    rows = sweep_rows(sweep_dir) if sweep_dir.is_dir() else []
    if not rows:
        return None
    return write_rows_csv(sweep_dir / RESULTS, rows)


def write_rows_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a CSV file at ``path`` (every key of any row a column), atomically: a crash
    leaves the previous file."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, text.getvalue())


class SweepTable(Callback):
    """Hydra callback: ``results.csv`` when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = write_sweep_table(Path(config.hydra.sweep.dir))
        if path is None:
            return
        # on stderr: a run's last stdout line stays its metrics
        print(f"sweep results: {path.resolve()}", file=sys.stderr, flush=True)
        on_test = [row["job"] for row in sweep_rows(path.parent)
                   if row.get("validated_on") == TEST_LIST]
        if on_test:
            print(f"warning: {len(on_test)} jobs of this sweep were validated on the test list "
                  f"(their format has no validation split): ranking them by a val/ metric "
                  f"chooses on the test videos (validated_on in results.csv); "
                  f"data.val_from_train=0.1 chooses on videos carved from training",
                  file=sys.stderr, flush=True)
