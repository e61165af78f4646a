"""Faults injected for real: a preemption signal mid-epoch, a full disk, a killed loader
worker. Each must lose nothing already saved and end in a clear message."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch
from helpers import tiny_train_overrides
from test_finetune import build, datamodule
from test_resume import LabelRecorder

from vidtl.callbacks.preemption import PreemptionCheckpoint
from vidtl.core.atomic import atomic_path
from vidtl.finetune.schedule import FinetuneSchedule
from vidtl.training.atomic_checkpoint_io import AtomicCheckpointIO


class SignalAt(L.Callback):
    """Sends ``signum`` to this very process at the start of training batch ``at``."""

    def __init__(self, signum: int, at: tuple[int, int]) -> None:
        self.signum, self.at = signum, at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_mid_epoch_saves_that_step_and_resume_continues_exactly(signum, tiny_dataset,
                                                                         tmp_path):
    def run(out, signal_at=None, resume=None):
        recorder = LabelRecorder()
        last = out / "checkpoints" / "last.ckpt"
        callbacks = [recorder, PreemptionCheckpoint(last)]
        if signal_at:
            callbacks.append(SignalAt(signum, signal_at))
        trainer = L.Trainer(default_root_dir=out, max_epochs=2, accelerator="cpu", logger=False,
                            limit_val_batches=1, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0,
                            plugins=[AtomicCheckpointIO()], callbacks=callbacks)
        module = build(FinetuneSchedule("full"))
        trainer.fit(module, datamodule=datamodule(tiny_dataset), ckpt_path=resume,
                    weights_only=True)
        return recorder.labels

    reference = run(tmp_path / "whole")
    steps_per_epoch = len([k for k in reference if k[0] == 0])
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path / "preempted", signal_at=(1, 3))
    assert stopped.value.code is None  # a clean exit (status 0)
    last = tmp_path / "preempted" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == steps_per_epoch + 4
    resumed = run(tmp_path / "preempted", resume=str(last))
    assert resumed == {k: v for k, v in reference.items() if k >= (1, 4)}
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)  # handler restored


@pytest.mark.slow
def test_sigterm_to_vidtl_train_then_resume_auto_finishes(tiny_dataset, tmp_path):
    """The command line: SIGTERM mid-epoch (as SLURM sends it), a clean exit with a message,
    then the same command with resume=auto runs to its last epoch."""
    def command(epochs: int) -> list[str]:
        return [sys.executable, "-m", "vidtl.cli.train", *tiny_train_overrides(
            tmp_path / "run", tiny_dataset, f"trainer.max_epochs={epochs}",
            "trainer.limit_train_batches=null", "logger=none", "test=false", "resume=auto")]

    log_file = tmp_path / "first.log"
    with log_file.open("w") as output:
        # Epochs enough that the run cannot end before the signal, however fast the machine.
        process = subprocess.Popen([*command(50), "checkpoint_every_n_steps=1"], stdout=output,
                                   stderr=subprocess.STDOUT)
        last = tmp_path / "run" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if last.is_file() and torch.load(last, weights_only=True)["global_step"] >= 3:
                process.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
        process.wait(timeout=120)
    text = log_file.read_text()
    assert process.returncode == 0, text[-3000:]
    assert "SIGTERM received: checkpoint of step" in text and "resume=auto" in text
    assert not (tmp_path / "run" / "metrics.json").read_text().count("val/top1")
    result = subprocess.run(command(2), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resume=auto: continuing from" in result.stdout + result.stderr
    assert "val/top1" in json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert torch.load(last, weights_only=True)["epoch"] == 1


HANGING_READER = """
import time
from vidtl.data.frames.decord_reader import DecordReader


class HangingReader(DecordReader):
    \"\"\"Reads like decord, but blocks for good on the videos of group 02 (a stalled read).\"\"\"

    def __init__(self, path, num_threads=1):
        if "_g02_" in str(path):
            print("blocked on", path, flush=True)
            time.sleep(3600)
        super().__init__(path, num_threads)
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_ends_a_run_blocked_on_a_read(workers, tiny_dataset, tmp_path):
    """Issue 23: a run blocked in a read (in the main process or a loader worker) absorbed
    SIGTERM for good; now it stops sigterm_grace_s after it, with the reason, status 143."""
    (tmp_path / "hanging_reader.py").write_text(HANGING_READER)
    command = [sys.executable, "-m", "vidtl.cli.train", *tiny_train_overrides(
        tmp_path / "run", tiny_dataset, "trainer.limit_train_batches=null", "logger=none",
        "test=false", "custom_imports=[hanging_reader]", "sigterm_grace_s=3",
        f"data.num_workers={workers}", "+data.backend._target_=hanging_reader.HangingReader",
        "+data.backend._partial_=true", "data.balanced_sampling=false")]
    log_file = tmp_path / "run.log"
    with log_file.open("w") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output,
                                   stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while "blocked on" not in log_file.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_file.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(timeout=60)
    text = log_file.read_text()
    assert process.returncode == 143, text[-3000:]
    assert time.monotonic() - signalled < 30
    assert "no step ended within 3 s of SIGTERM: stopping now" in text
    time.sleep(1)
    assert not processes_naming(str(tmp_path / "run")), "the stopped run's workers still run"


def processes_naming(text: str) -> list[int]:
    """The processes whose command line holds ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and text in open(f"/proc/{entry}/cmdline").read():
                found.append(int(entry))
        except OSError:
            pass
    return found


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_a_full_disk_while_writing_keeps_the_previous_file(tmp_path):
    """RLIMIT_FSIZE in a child process: the write fails, the error is clear, the old file
    is intact and no partial file is left."""
    target = tmp_path / "last.ckpt"
    torch.save({"step": 1}, target)
    before = target.read_bytes()
    script = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from vidtl.training.atomic_checkpoint_io import AtomicCheckpointIO\n"
        "from vidtl.core.atomic import DiskFullError\n"
        "try:\n"
        "    AtomicCheckpointIO().save_checkpoint({'w': torch.zeros(1_000_000)}, "
        f"Path({str(target)!r}))\n"
        "except DiskFullError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            preexec_fn=lambda: _limit_file_size(200_000), timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"{target}: cannot be written (File too large); its previous version is intact" in (
        result.stdout)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    with atomic_path(target) as partial:  # the same path works again once there is room
        torch.save({"step": 2}, partial)
    assert torch.load(target, weights_only=True) == {"step": 2}


@pytest.mark.slow
def test_a_full_disk_stops_vidtl_prepare_clearly_and_it_resumes(tiny_dataset, tmp_path):
    """The frame store under a file-size limit that its frame files exceed: one line naming
    the file, nothing half-written, and the same command finishes once there is room."""
    out = tmp_path / "store"
    command = [sys.executable, "-m", "vidtl.cli.prepare", f"data.root={tiny_dataset}",
               "data.synthetic=null", f"output={out}", "workers=1", "progress=false"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            preexec_fn=lambda: _limit_file_size(8_000))
    assert result.returncode == 2, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: vidtl-prepare stopped: ") and ".frames: cannot be" in error
    assert "Traceback" not in result.stderr
    assert not [p for p in out.rglob("*") if "partial" in p.name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(out.rglob("*.frames"))) == len(list(tiny_dataset.rglob("*.avi")))
