"""The researcher's loop from a fresh clone, as the README shows it (experiments/own_project):
own temporal module + LightningModule subclass with its own parameter + CSV data + a 2-job sweep
logged to CSV and W&B (offline) + the best job loaded in a script + a tensor predicted; then
vidtl-eval, -predict and -export of that checkpoint. Console scripts, started from the project's
folder outside the repository, with no PYTHONPATH."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_csv_lists

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ["data.num_frames=2", "data.crop_size=32", "data.short_side=32", "data.batch_size=4",
        "data.num_workers=0", "data.persistent_workers=false", "model/backbone=timm",
        "model.backbone.name=test_efficientnet", "model.backbone.pretrained=false",
        "trainer.accelerator=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2", "callbacks.progress_bar=null", "test=false"]
CUSTOM = "custom_imports=[mylab.temporal,mylab.module]"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_the_researchers_loop_as_the_readme_shows_it(tiny_dataset, tmp_path):
    pytest.importorskip("wandb")
    project = shutil.copytree(ROOT / "experiments" / "own_project", tmp_path / "project")
    train_list, val_list = write_csv_lists(tiny_dataset, tmp_path / "lists")
    data = [f"data.root={tiny_dataset}", f"data.train_list={train_list}",
            f"data.val_list={val_list}"]
    sweep = tmp_path / "sweep"

    # Forgetting custom_imports: one line that says what to add.
    forgot = run([str(BIN / "vidtl-train"), "-cd", "conf", "experiment=mylab_csv",
                  "custom_imports=[]", *data, *TINY, "logger=none",
                  f"hydra.run.dir={tmp_path / 'forgot'}"], project)
    assert forgot.returncode == 2 and "Traceback" not in forgot.stderr
    assert "add custom_imports=[mylab.module]" in forgot.stderr

    # The sweep: two jobs, CSV and W&B loggers at once.
    result = run([str(BIN / "vidtl-train"), "-m", "-cd", "conf", "experiment=mylab_csv", *data,
                  "module.init_scale=1.0,2.0", "logger=[csv,wandb]",
                  f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}", *TINY],
                 project)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(sweep / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["module.init_scale"] for r in rows] == ["1.0", "2.0"]
    assert all(r["status"] == "done" and Path(r["checkpoint"]).is_file() for r in rows)
    for job, scale in (("0", "1.0"), ("1", "2.0")):
        log = (sweep / job / "train.log").read_text()
        # W&B: the job's run is named after its folder, grouped by sweep, tagged with the
        # experiment's tag and the swept value only
        assert f"tags ['mylab', 'module.init_scale={scale}']" in log
        (offline,) = (sweep / job / "wandb").glob("offline-run-*")
        assert offline.name.endswith((sweep / job / "wandb_run_id.txt").read_text().strip())
        assert list((sweep / job / "csv").glob("metrics.csv"))

    # The best job, loaded in a script of the project's own; a tensor predicted.
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    script = run([sys.executable, "predict_best.py", str(sweep), str(video)], project)
    assert script.returncode == 0, script.stderr[-3000:]
    found = json.loads(script.stdout.strip().splitlines()[-1])
    best = max(rows, key=lambda r: float(r["val/top1"]))
    assert found["checkpoint"] == best["checkpoint"]
    assert found["module_class"] == "ScaledLogitsModule"
    assert len(found["from_tensor"]) == 3 and sum(found["probabilities"]) <= 1.0 + 1e-6

    # The commands rebuild the subclass from the checkpoint.
    checkpoint = best["checkpoint"]
    evaluation = run([str(BIN / "vidtl-eval"), f"ckpt_path={checkpoint}", CUSTOM,
                      "subsets=[val]", "trainer.accelerator=cpu", "data.num_workers=0",
                      f"paths.output_dir={tmp_path / 'eval'}", "logger=none"], project)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert "val/top1" in json.loads(evaluation.stdout.strip().splitlines()[-1])
    prediction = run([str(BIN / "vidtl-predict"), f"ckpt_path={checkpoint}", CUSTOM,
                      f"input={video}", "output=json", "num_workers=0", "top_k=3"], project)
    assert prediction.returncode == 0, prediction.stderr[-3000:]
    assert json.loads(prediction.stdout.strip().splitlines()[-1])["topk"]
    exported = run([str(BIN / "vidtl-export"), f"ckpt_path={checkpoint}", CUSTOM,
                    f"output={tmp_path / 'model.pt'}"], project)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "model.pt").is_file()


@pytest.mark.slow
def test_predict_best_on_ucf101_layout(tiny_dataset, tmp_path):
    """UCF101 layout validates on the test list: each job's final weights are its checkpoint
    (kept as checkpoints/final.ckpt), results.csv names them, predict_best.py loads the best
    and says what it was chosen on."""
    project = shutil.copytree(ROOT / "experiments" / "own_project", tmp_path / "project")
    sweep = tmp_path / "sweep"
    result = run([str(BIN / "vidtl-train"), "-m", "-cd", "conf", "model/temporal=mean_max",
                  "module=scaled", CUSTOM, f"data.root={tiny_dataset}", "data.synthetic=null",
                  "module.init_scale=1.0,2.0", "logger=none", f"hydra.sweep.dir={sweep}",
                  f"paths.data_dir={tmp_path / 'data'}", *TINY], project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validated on the test list" in result.stderr
    with open(sweep / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert all(r["validated_on"] == "test list" and r["checkpoint"].endswith("final.ckpt")
               and Path(r["checkpoint"]).is_file() for r in rows)
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    script = run([sys.executable, "predict_best.py", str(sweep), str(video)], project)
    assert script.returncode == 0, script.stderr[-3000:]
    found = json.loads(script.stdout.strip().splitlines()[-1])
    assert found["checkpoint"] == max(rows, key=lambda r: float(r["val/top1"]))["checkpoint"]
    assert found["validated_on"] == "test list" and "computed on the test list" in script.stderr
