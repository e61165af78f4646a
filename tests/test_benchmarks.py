"""Every script under benchmarks/ runs end to end in its smoke mode, so none can drift from the
code it measures. Smoke runs write only under tmp_path, never docs/benchmarks.md. The scripts
that write a table are run (and what they measured checked) by test_benchmark_commands.py, from
the command their table lists; here: the others, and real_transfer on data of its own."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_video

ROOT = Path(__file__).resolve().parents[1]
HELPERS = {"docs_section.py", "runner.py", "training_rows.py"}
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
    from test_benchmark_commands import RESULTS

    tested = {"kept_readers_memory.py", "real_transfer.py", "clip_profile.py", "timeline.py",
              "timeline_accuracy.py", *RESULTS}
    assert set(SCRIPTS) == tested, "add a smoke test for each new benchmark script"


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


def test_kept_readers_memory_smoke(tmp_path):
    assert "clips" in run_smoke("kept_readers_memory.py", "--data-dir", str(tmp_path))


def test_clip_profile_smoke():
    printed = run_smoke("clip_profile.py")  # its tiny store goes to a temporary folder
    steps = {step: float(ms) for ms, step in (line.split(" ms  ")
                                               for line in printed.strip().splitlines()[-11:])}
    assert len(steps) == 11 and all(math.isfinite(ms) for ms in steps.values())
    assert "hand-over of the batch from a worker: reused slots of SharedBatchPool (now)" in steps
    assert steps["decode: simplejpeg into one array (now)"] > 0


def test_timeline_smoke(tmp_path):
    page = tmp_path / "page.md"
    printed = run_smoke("timeline.py", "--out", str(tmp_path), "--docs", str(page))
    results = json.loads((tmp_path / "smoke" / "results.json").read_text())
    kinds = {row["kind"]: row for row in results.values()}
    assert set(kinds) == {"decode", "torch", "onnx", "seek"}  # a row of each kind
    assert all(row["realtime_factor"] > 0 for row in results.values())
    for kind in ("torch", "onnx"):  # one pass: every frame decoded, only the sampled converted
        row = kinds[kind]
        # 5 s of video, the default 2 s windows every 1 s: 4 windows
        assert row["windows"] == 4 and 0 < row["frames_converted"] < row["frames_decoded"] == 125
        assert 0 < row["latency_mean_s"] <= row["latency_max_s"]
    assert kinds["seek"]["windows"] == 4 and kinds["seek"]["frames_converted"] == 32
    assert "<!-- benchmarks/timeline.py: start -->" in page.read_text()
    assert "| test_efficientnet_112 | 112 | timeline | onnxruntime | 1 |" in printed


@pytest.mark.slow
def test_timeline_accuracy_smoke(tmp_path):
    """Its own tiny data (no shared folder): a checkpoint trained, a long video built from 4
    test clips with its truth, 2 settings scored, vidtl-predict's segments matching."""
    page = tmp_path / "page.md"
    run_smoke("timeline_accuracy.py", "--out", str(tmp_path), "--docs", str(page))
    out = tmp_path / "smoke"
    truth = json.loads((out / "long.json").read_text())
    clips = truth["clips"]
    assert len(clips) == 4 and len({c["label"] for c in clips}) == 4 and clips[0]["start_s"] == 0
    assert all(a["end_s"] == b["start_s"] for a, b in zip(clips, clips[1:]))
    assert truth["duration_s"] == clips[-1]["end_s"] > 0
    rows = list(json.loads((out / "results.json").read_text()).values())
    assert [row["smooth"] for row in rows] == [1, 3]
    for row in rows:
        assert 0 <= row["frame_accuracy"] <= 1 and 0 <= row["window_accuracy"] <= 1
        assert row["segments"] == len(row["predicted_segments"]) >= 1
        assert row["latency_s"] == pytest.approx(row["window_s"] + row["smoothing_delay_s"]
                                                 + row["score_ms"] / 1000)
    assert rows[1]["smoothing_delay_s"] == rows[1]["stride_s"]  # 3 windows: one stride late
    assert (out / "cli_check" / "segments.csv").is_file()
    assert "<!-- benchmarks/timeline_accuracy.py: start -->" in page.read_text()
