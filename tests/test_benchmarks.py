"""Every script under benchmarks/ runs end to end in its smoke mode, so none can drift from the
code it measures. Smoke runs write only under tmp_path, never docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_video, require_decoder

ROOT = Path(__file__).resolve().parents[1]
HELPERS = {"docs_section.py", "training_rows.py"}
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in HELPERS)


def run_smoke(script: str, *args: str) -> str:
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    result = subprocess.run([sys.executable, f"benchmarks/{script}", "--smoke", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (ROOT / "docs" / "benchmarks.md").read_text() == docs  # smoke runs write no docs
    return result.stdout


def test_every_script_has_a_smoke_test():
    tested = {"data_throughput.py", "kept_readers_memory.py", "precision.py",
              "temporal.py", "tsm_defaults.py", "real_transfer.py", "feature_cache.py",
              "default_run.py", "decoders.py", "clip_profile.py"}
    assert set(SCRIPTS) == tested, "add a smoke test for each new benchmark script"


@pytest.mark.slow
def test_decoders_smoke():
    require_decoder("torchcodec")
    table = run_smoke("decoders.py")
    for backend in ("decord", "torchcodec", "pyav"):
        assert f"| {backend} | " in table


@pytest.mark.slow
def test_default_run_smoke(tmp_path):
    readme = (ROOT / "README.md").read_text()
    run_smoke("default_run.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert 0 <= results["metrics"]["test/top1"] <= 1 and results["wall_seconds"] > 0
    assert (ROOT / "README.md").read_text() == readme


@pytest.mark.slow
def test_temporal_smoke(tmp_path):
    run_smoke("temporal.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"avg", "tsm"}
    assert all(0 <= row["test_top1"] <= 1 for row in results.values())


@pytest.mark.slow
def test_tsm_defaults_smoke(tmp_path):
    run_smoke("tsm_defaults.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "smoke" / "results.json").read_text())
    assert set(results) == {"0.2 defaults", "defaults"}
    assert all(0 <= row["test_top1"] <= 1 for row in results.values())


@pytest.mark.slow
def test_feature_cache_smoke(tmp_path):
    run_smoke("feature_cache.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "smoke" / "results.json").read_text())
    assert set(results) == {"decoded video", "cached features"}
    assert all(row["epoch_seconds"] > 0 for row in results.values())


@pytest.mark.slow
def test_real_transfer_smoke(tmp_path):
    data = tmp_path / "csv_data"
    lines = ["path,label"]
    for label in ("a", "b"):
        for index in range(2):
            make_video(data / label / f"{index}.avi", seed=index)
            lines.append(f"{label}/{index}.avi,{label}")
    for name in ("train.csv", "test.csv"):
        (data / name).write_text("\n".join(lines) + "\n")
    run_smoke("real_transfer.py", "--out", str(tmp_path), "--data", str(data))
    results = json.loads((tmp_path / "smoke" / "results.json").read_text())
    assert set(results) == {"full_tsm", "st_adapter"}
    assert results["st_adapter"]["trainable_share"] < results["full_tsm"]["trainable_share"] == 1


@pytest.mark.slow
def test_data_throughput_smoke(tmp_path):
    run_smoke("data_throughput.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "smoke.json").read_text())
    # no device rows without a GPU
    assert set(results["rows"]) == {"video", "frames_threads", "stream"}
    rows = results["rows"].values()
    assert all(row["loader_clips_per_s"] > 0 for row in rows)
    assert all(row["loader_over_bare_loop"] == pytest.approx(
        row["loader_clips_per_s"] / row["bare_loop_clips_per_s"]) for row in rows)


@pytest.mark.slow
def test_precision_smoke(tmp_path):
    run_smoke("precision.py", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "smoke.json").read_text())["rows"]
    assert all(row["model_clips_per_s"] > 0 for row in rows.values())


def test_kept_readers_memory_smoke(tmp_path):
    assert "clips" in run_smoke("kept_readers_memory.py", "--data-dir", str(tmp_path))


def test_clip_profile_smoke(tmp_path):
    printed = run_smoke("clip_profile.py", "--data", str(tmp_path))
    steps = {step: float(ms) for ms, step in (line.split(" ms  ")
                                               for line in printed.strip().splitlines()[-11:])}
    assert len(steps) == 11 and all(math.isfinite(ms) for ms in steps.values())
    assert "hand-over of the batch from a worker: reused slots of SharedBatchPool (now)" in steps
    assert steps["decode: simplejpeg into one array (now)"] > 0
