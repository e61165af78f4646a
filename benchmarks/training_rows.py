"""Shared by the accuracy benchmarks: train one row with ``python -m vidtl.cli.train`` and
score the test split with the row's final checkpoint (no selection on the test split)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from docs_section import REPO, relative


def tiny_synthetic(backbone: str, video_frames: int) -> list[str]:
    """Overrides of a smoke run: a tiny synthetic dataset, 2-frame 32 px clips, a random timm
    test backbone, no loader workers."""
    return ["data.synthetic.groups=2", "data.synthetic.clips_per_group=1",
            f"data.synthetic.num_frames={video_frames}", "data.synthetic.width=64",
            "data.synthetic.height=48", "data.num_frames=2", "data.crop_size=32",
            "data.short_side=32", "data.num_workers=0", "data.persistent_workers=false",
            "model/backbone=timm", f"model.backbone.name={backbone}",
            "model.backbone.pretrained=false"]


def train_command(overrides: list[str]) -> str:
    """How a table shows a row's training: ``python -m vidtl.cli.train`` with every override,
    paths relative to the checkout (the run folder, which changes no result, is added by
    train_row)."""
    return relative(" ".join(["python -m vidtl.cli.train", *overrides]))


def train_row(overrides: list[str], run_dir: Path) -> float:
    """Run ``vidtl-train`` with ``overrides`` into ``run_dir``; return the minutes it took."""
    command = [sys.executable, "-m", "vidtl.cli.train", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   env={**os.environ, "WANDB_MODE": "disabled"})
    return (time.perf_counter() - start) / 60


def predict_test(checkpoint_path: Path) -> tuple[Any, Any]:
    """Labels and predictions of the test split, from a vidtl checkpoint (its own test
    protocol: views scored and averaged as vidtl-eval does)."""
    from vidtl.assembly.data import build_datamodule
    from vidtl.evaluation.view_scores import aggregate_views, score_views
    from vidtl.inference.checkpoint_model import load_trained_model

    model = load_trained_model(checkpoint_path)
    module = model.module
    datamodule = build_datamodule(model.config.data)
    labels, predictions = [], []
    import torch

    with torch.no_grad():
        for views, target, _ in datamodule.test_dataloader():
            logits = score_views(views, module.score_clips, module.view_chunk)
            predictions.append(aggregate_views(logits, module.view_aggregation).argmax(-1))
            labels.append(target)
    return torch.cat(labels), torch.cat(predictions)


def final_test_top1(run_dir: Path) -> float:
    """Test top-1 of ``run_dir``'s ``checkpoints/last.ckpt`` with the run's own test views."""
    labels, predictions = predict_test(run_dir / "checkpoints" / "last.ckpt")
    return (predictions == labels).float().mean().item()


def run_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def finished(run_dir: Path) -> bool:
    """A row whose training finished (``--reuse`` scores it instead of training it again)."""
    last = run_dir / "checkpoints" / "last.ckpt"
    return (run_dir / "metrics.json").is_file() and last.is_file()


def recorded_minutes(run_dir: Path) -> float:
    """Wall time of a finished run, from its files: Hydra writes ``.hydra/config.yaml`` when
    the run starts, vidtl writes ``metrics.json`` when it ends."""
    start = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    return ((run_dir / "metrics.json").stat().st_mtime - start) / 60


def trained_minutes(overrides: list[str], run_dir: Path, reuse: bool) -> float:
    """Train the row into ``run_dir``, or with ``reuse`` take a finished run's minutes."""
    if reuse and finished(run_dir):
        return recorded_minutes(run_dir)  # trained by an earlier invocation
    return train_row(overrides, run_dir)


def direction_data(out: Path, smoke: bool) -> Path:
    """The direction-only dataset under ``out / "data"`` (a tiny one for smoke runs)."""
    from vidtl.data.tools.direction_dataset import DirectionSpec, ensure_direction_dataset

    spec = (DirectionSpec(train_per_class=2, test_per_class=1, num_frames=8, size=32, patch=8)
            if smoke else DirectionSpec())
    return ensure_direction_dataset(out / "data", spec)


def add_row_options(parser: argparse.ArgumentParser, rows: list[str], out: Path,
                    reuse: bool = True) -> None:
    """``--rows``, ``--epochs`` (12), ``--out`` and (with ``reuse``) ``--reuse``."""
    parser.add_argument("--rows", nargs="*", choices=rows, help="default: every row")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=out)
    if reuse:
        parser.add_argument("--reuse", action="store_true",
                            help="score a row's finished run instead of training it again")
