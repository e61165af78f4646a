"""Exact, automatic resume: seeded data order, loader position, atomic checkpoints, W&B run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch
from helpers import compose_config, tiny_train_overrides
from test_finetune import Stop, build, datamodule

from vidtl.cli.train import step_checkpoint, train
from vidtl.data.loading.resumable import EpochShuffleSampler, ResumableDataLoader
from vidtl.finetune.schedule import FinetuneSchedule
from vidtl.training.atomic_checkpoint_io import AtomicCheckpointIO


def test_epoch_shuffle_depends_on_seed_and_epoch_only():
    a, b = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    b.set_epoch(1)
    assert list(a) == list(EpochShuffleSampler(20, seed=3)) and sorted(a) == list(range(20))
    assert list(a) != list(b) and list(a) != list(EpochShuffleSampler(20, seed=4))
    b.skip_once(epoch=1, items=5)
    assert list(b) == b.order(1)[5:]
    assert list(b) == b.order(1)  # once only
    a.skip_once(epoch=7, items=5)
    assert list(a) == a.order(0)  # another epoch: no skip


def test_loader_state_counts_the_batches_the_training_loop_consumed():
    loader = ResumableDataLoader(list(range(12)), batch_size=2,
                                 sampler=EpochShuffleSampler(12, seed=0))
    iterator = iter(loader)
    seen = [next(iterator).tolist() for _ in range(3)]  # Lightning does not prefetch: 3 steps
    state = loader.state_dict()
    assert state == {"epoch": 0, "batches": 3, "finished": False, "world_size": 1,
                     "seed": 0}
    resumed = ResumableDataLoader(list(range(12)), batch_size=2,
                                  sampler=EpochShuffleSampler(12, seed=0))
    resumed.load_state_dict(state)
    rest = [b.tolist() for b in resumed]
    assert len(rest) == 3 and not any(batch in seen for batch in rest)  # the other half
    assert sorted(x for batch in seen + rest for x in batch) == list(range(12))
    assert [b.tolist() for b in resumed] == [b.tolist() for b in loader]  # then whole epochs
    assert loader.state_dict() == {"epoch": 0, "batches": 6, "finished": True,
                                   "world_size": 1, "seed": 0}  # none pending
    after_the_epoch = ResumableDataLoader(list(range(12)), batch_size=2,
                                          sampler=EpochShuffleSampler(12, seed=0))
    after_the_epoch.load_state_dict(loader.state_dict())
    assert after_the_epoch.sampler.epoch == 1 and len(list(after_the_epoch)) == 6


class LabelRecorder(L.Callback):
    """The labels of every training batch, by (epoch, batch); raises Stop at ``stop_at``."""

    def __init__(self, stop_at=None):
        self.stop_at, self.labels = stop_at, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.labels[trainer.current_epoch, batch_idx] = batch[1].tolist()
        if self.stop_at == (trainer.current_epoch, batch_idx):
            raise Stop()


def test_resume_mid_epoch_sees_the_same_batches(tiny_dataset, tmp_path):
    def run(out, stop_at=None, resume=None):
        recorder = LabelRecorder(stop_at)
        trainer = L.Trainer(default_root_dir=out, max_epochs=2, accelerator="cpu", logger=False,
                            limit_val_batches=1, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0,
                            plugins=[AtomicCheckpointIO()],
                            callbacks=[recorder, step_checkpoint(out, every_n_steps=1)])
        module = build(FinetuneSchedule("full"))  # seeds torch: the same shuffles each run
        trainer.fit(module, datamodule=datamodule(tiny_dataset), ckpt_path=resume)
        return recorder.labels

    reference = run(tmp_path / "whole")
    assert len({tuple(v) for k, v in reference.items() if k[0] == 0}) > 1
    with pytest.raises(Stop):
        run(tmp_path / "killed", stop_at=(1, 3))
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == len(
        [k for k in reference if k[0] == 0]) + 3
    resumed = run(tmp_path / "killed", resume=str(last))
    assert min(resumed) == (1, 3)  # continues inside the epoch, after the saved steps
    assert resumed == {k: v for k, v in reference.items() if k >= (1, 3)}
    assert [v for k, v in reference.items() if k[0] == 0] != [
        v for k, v in reference.items() if k[0] == 1]  # epochs are shuffled differently
    assert not list(last.parent.glob(".*partial"))


@pytest.mark.slow
def test_sigkill_then_resume_auto_finishes_the_run_in_the_same_wandb_run(tiny_dataset, tmp_path):
    """A real kill: the process is SIGKILLed in the middle of an epoch, the same command is
    run again, and the run reaches its last epoch, writes its metrics and keeps its W&B id."""
    log_dir = tmp_path / "logs"
    overrides = [o for o in tiny_train_overrides(tmp_path / "unused", tiny_dataset,
                                                 "trainer.max_epochs=3",
                                                 "trainer.limit_train_batches=null",
                                                 "trainer.limit_val_batches=1",
                                                 "logger=[wandb,csv,tensorboard]",
                                                 "trainer.log_every_n_steps=1", "test=false")
                 if not o.startswith("paths.output_dir")]
    command = [sys.executable, "-m", "vidtl.cli.train", *overrides, f"paths.log_dir={log_dir}",
               "run_name=preemptible", "resume=auto", "checkpoint_every_n_steps=1"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    run_dir = log_dir / "train" / "runs" / "preemptible"
    last = run_dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        if last.is_file():
            step = torch.load(last, weights_only=True)["global_step"]
            if step >= 10 and step % 8 not in (0, 7):  # inside the second epoch (8 steps each)
                os.kill(process.pid, signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert killed_at is not None and process.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resume=auto: continuing from" in result.stdout + result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/top1"] is not None
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["global_step"] == 24  # 3 epochs of 8 steps
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == run_id
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(run_id) for r in runs)  # one W&B run, resumed
    # every training step's curve once, in order, in CSV and in TensorBoard (issue 24)
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert_every_step_once([int(r["step"]) for r in rows if r.get("train/loss")], 24, killed_at)
    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.*")).parent))
    events.Reload()
    assert_every_step_once([e.step for e in events.Scalars("train/loss")], 24, killed_at)


def assert_every_step_once(steps: list[int], total: int, killed_at: int) -> None:
    """Each step of ``range(total)`` once, in order. Lightning writes a step's checkpoint
    before it logs the step's row, so a SIGKILL landing between the two loses that one row
    (docs/runs.md): at most the row just before the step the run resumed at (the one the
    kill saw, or the next) may be missing."""
    assert steps == sorted(set(steps)) and set(steps) <= set(range(total)), steps
    missing = sorted(set(range(total)) - set(steps))
    assert len(missing) <= 1 and all(step in (killed_at - 1, killed_at) for step in missing), (
        missing, killed_at)


def test_the_csv_curves_of_every_attempt_survive_a_resume(tiny_dataset, tmp_path):
    """Issue 24: after ``resume=auto``, ``csv/metrics.csv`` held only the resumed steps. Now it
    holds every step once, in order; the rows an interrupted attempt logged after its last
    checkpoint (here planted: steps 2 and 3) give way to the resumed run's."""
    import csv

    run = tmp_path / "run"
    common = ["logger=csv", "test=false", "trainer.log_every_n_steps=1", "resume=auto"]
    train(compose_config("train", tiny_train_overrides(run, tiny_dataset, *common)))
    metrics_file = run / "csv" / "metrics.csv"
    with metrics_file.open("a") as file:  # what an attempt killed after step 2's checkpoint left
        for step in (2, 3):
            file.write(f"0,{step},,,,,,999.0,\n")
    train(compose_config("train", tiny_train_overrides(run, tiny_dataset, *common,
                                                       "trainer.max_epochs=2")))
    rows = list(csv.DictReader(metrics_file.open()))
    steps = [int(row["step"]) for row in rows if row.get("train/loss")]
    assert steps == [0, 1, 2, 3]
    assert not any("999" in value for row in rows for value in row.values() if value)
    # each epoch's validation, and the final weights' (the first attempt's was superseded)
    assert [int(row["step"]) for row in rows if row.get("val/top1")] == [1, 3, 4]
    for key in rows[0]:  # no metric twice at one step
        logged = [row["step"] for row in rows if row.get(key) and key not in ("step", "epoch")]
        assert len(logged) == len(set(logged)), key
