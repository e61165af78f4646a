"""Sweeps: an Optuna (TPE) search through the Hydra sweeper plugin, on tiny data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import compose_config, tiny_train_overrides

from vidtl.cli.builders import sweep_run_options

TINY_SEARCH = """# @package _global_
defaults:
  - optuna
hydra:
  sweeper:
    n_trials: 3
    sampler:
      n_startup_trials: 2
    params:
      model/temporal: choice(avg, attention)
"""


@pytest.mark.slow
def test_optuna_sweep_of_three_trials_writes_the_best_parameters(tiny_dataset, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    searches = tmp_path / "conf" / "hparams_search"
    searches.mkdir(parents=True)
    (searches / "tiny_optuna.yaml").write_text(TINY_SEARCH)
    sweep_dir = tmp_path / "sweep"
    overrides = [o for o in tiny_train_overrides(tmp_path / "unused", tiny_dataset,
                                                 "test=false", "logger=csv")
                 if not o.startswith("paths.output_dir")]
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.train", "-m", "hparams_search=tiny_optuna",
         f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.sweep.dir={sweep_dir}",
         *overrides],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep_dir.iterdir() if (p / "metrics.json").is_file())
    assert len(jobs) == 3
    trial_scores = [json.loads((job / "metrics.json").read_text())["val/top1"] for job in jobs]
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(trial_scores))
    # data.num_frames is fixed on the command line (the tiny settings), so it is not searched.
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay",
                                        "model/temporal", "finetune"}
    assert best["best_params"]["model/temporal"] in ("avg", "attention")
    table = (sweep_dir / "results.csv").read_text().splitlines()  # the trials side by side
    assert len(table) == 4 and "optimizer.lr" in table[0] and "val/top1" in table[0]
    # the search ranks trials on videos carved from training (UCF101 layout), never on test
    with open(sweep_dir / "results.csv", newline="") as file:
        assert {row["validated_on"] for row in csv.DictReader(file)} == {"carved from train"}
    assert all((job / "val_from_train.csv").is_file() for job in jobs)
    assert "validated on the test list" not in result.stderr


def test_sweep_jobs_are_grouped_and_tagged():
    options = sweep_run_options("train", "logs/train/multirun/2026-11-28_05-50-00",
                                ["optimizer.lr=0.01", "data.root=/data/ucf101",
                                 "hydra.sweep.dir=x", "+model.dropout=0.2"], ["tsm"])
    assert options == {"group": "train-2026-11-28_05-50-00",
                       "tags": ["tsm", "optimizer.lr=0.01", "+model.dropout=0.2"]}


@pytest.mark.slow
def test_multirun_jobs_are_separate_wandb_runs_of_one_group(tiny_dataset, tmp_path):
    pytest.importorskip("wandb")
    sweep_dir = tmp_path / "sweep"
    overrides = [o for o in tiny_train_overrides(tmp_path / "unused", tiny_dataset, "test=false",
                                                 "logger=wandb", "trainer.limit_train_batches=1",
                                                 "trainer.limit_val_batches=1")
                 if not o.startswith("paths.output_dir")]
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.train", "-m", "optimizer.lr=0.01,0.001",
         f"hydra.sweep.dir={sweep_dir}", *overrides],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert result.returncode == 0, result.stderr[-3000:]
    ids = []
    for job, lr in (("0", "0.01"), ("1", "0.001")):
        log = (sweep_dir / job / "train.log").read_text()
        assert f"group train-{sweep_dir.name}, tags [" in log and f"'optimizer.lr={lr}'" in log
        ids.append((sweep_dir / job / "wandb_run_id.txt").read_text().strip())
        (run,) = (sweep_dir / job / "wandb").glob("offline-run-*")
        assert run.name.endswith(ids[-1])
    assert ids[0] != ids[1]


@pytest.mark.slow
def test_submitit_local_sweep(tiny_dataset, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep_dir = tmp_path / "sweep"
    overrides = [o for o in tiny_train_overrides(tmp_path / "unused", tiny_dataset, "test=false",
                                                 "trainer.limit_train_batches=1",
                                                 "trainer.limit_val_batches=1")
                 if not o.startswith("paths.output_dir")]
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.train", "-m", "hydra/launcher=submitit_local",
         "hydra.launcher.timeout_min=10", "optimizer.lr=0.01,0.001",
         f"hydra.sweep.dir={sweep_dir}", *overrides],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert "val/top1" in json.loads((sweep_dir / job / "metrics.json").read_text())
    assert list((sweep_dir / ".submitit").iterdir())  # the jobs went through submitit


def test_slurm_launcher_preset_composes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"


def test_the_sweep_table_lists_a_failed_job_and_only_the_swept_keys(tmp_path):
    from vidtl.sweeps.sweep_table import write_sweep_table

    for job, (lr, top1) in enumerate([("0.1", 0.5), ("0.01", None)]):
        folder = tmp_path / str(job)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(
            f"- optimizer.lr={lr}\n- trainer.max_epochs=2\n")
        if top1 is not None:
            (folder / "metrics.json").write_text(f'{{"val/top1": {top1}, "run": "x"}}')
    lines = write_sweep_table(tmp_path).read_text().splitlines()
    assert lines == ["job,optimizer.lr,status,checkpoint,evaluated_weights,validated_on,val/top1",
                     "0,0.1,done,,,,0.5", "1,0.01,no metrics,,,,"]


def test_sweep_tags_are_the_swept_values_only_and_runs_are_named_after_their_folder(tmp_path):
    from omegaconf import OmegaConf

    from vidtl.cli.builders import swept_keys, wandb_options

    sweep_dir = tmp_path / "multirun" / "2026-12-01_02-00-00"
    job_dir = sweep_dir / "1"
    job_dir.mkdir(parents=True)
    OmegaConf.save({"hydra": {"overrides": {"task": [  # as Hydra writes multirun.yaml
        "optimizer.lr=0.01,0.001", "data=csv", "data.root=/data/x", "+model.dropout=0.2",
        "model/temporal=glob(a*)"]}, "sweeper": {"params": {"finetune": "choice(full)"}}}},
        sweep_dir / "multirun.yaml")
    assert swept_keys(sweep_dir) == {"optimizer.lr", "model/temporal", "finetune"}
    job = ["optimizer.lr=0.001", "data=csv", "data.root=/data/x", "+model.dropout=0.2",
           "model/temporal=avg", "finetune=full"]
    options = sweep_run_options("train", str(sweep_dir), job, ["mine"], swept_keys(sweep_dir))
    assert options["tags"] == ["mine", "optimizer.lr=0.001", "model/temporal=avg",
                               "finetune=full"]
    assert swept_keys(tmp_path) is None  # no multirun.yaml: every override is a tag
    cfg = OmegaConf.create({"paths": {"output_dir": str(job_dir)}, "task_name": "train"})
    named = wandb_options(cfg, OmegaConf.create({"name": None}))
    assert named["name"] == "1" and named["resume"] == "allow"
    assert named["id"] == (job_dir / "wandb_run_id.txt").read_text().strip()
    assert "name" not in wandb_options(cfg, OmegaConf.create({"name": "mine"}))


def test_the_logged_config_names_the_run_as_it_is(tmp_path):
    """Issue 24: the config logged to W&B showed the sweep's time as run_name and an empty
    group for every job."""
    from vidtl.cli.builders import logged_config

    job_dir = tmp_path / "multirun" / "2026-12-01_02-00-00" / "3"
    cfg = compose_config("train", [f"paths.output_dir={job_dir}", "logger=wandb"])
    config = logged_config(cfg)
    assert config["run_name"] == "3" and config["logger"]["wandb"]["name"] == "3"
