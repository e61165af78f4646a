"""The embedded default, exactly as a user runs it: `vidtl-train` with no arguments."""

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_default_run_learns(tmp_path):
    command = shutil.which("vidtl-train") or f"{sys.executable} -m vidtl.cli.train"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("VIDTL_DATA_DIR", None)
    env.pop("VIDTL_LOG_DIR", None)
    result = subprocess.run(command.split(), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    assert json.loads((runs[0] / "metrics.json").read_text()) == metrics
    assert (runs[0] / ".hydra" / "config.yaml").is_file()
    assert (tmp_path / "data" / "synthetic" / "ucfTrainTestlist" / "classInd.txt").is_file()
    # 8 classes: chance is 0.125; order-blind TSN averaging can reach at most 0.625
    assert metrics["test/top1"] > 0.4, metrics
    assert metrics["skipped_videos"] == 0
