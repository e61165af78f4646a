"""Every user error ends in one line naming the file, key or value, without a traceback unless
HYDRA_FULL_ERROR=1; a loader worker killed mid-epoch names the cause and loses no checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import compose_config, tiny_train_overrides

from vidtl.cli.errors import exit_on_user_error, one_line, quiet_worker_teardown
from vidtl.cli.evaluate import evaluate
from vidtl.cli.export import export
from vidtl.cli.train import train


def run(module: str, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"vidtl.cli.{module}", *overrides],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def single_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def error_line(command, cfg, capsys) -> str:
    """The one line a command prints for ``cfg`` (in this process, as its ``main`` runs it)."""
    with pytest.raises(SystemExit) as stopped:
        exit_on_user_error(command)(cfg)
    assert stopped.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1
    return errors[0]


@pytest.mark.parametrize(("override", "expected"), [
    ("data.num_frames=0", "num_frames must be >= 1, got 0"),
    ("data.on_decode_error=retry", "data.on_decode_error must be one of"),
    ("data.num_test_crops=2", "data.num_test_crops 1 or 3, got"),
    ("resume=sometimes", "resume must be null or auto, got 'sometimes'"),
    ("model.backbone.name=resnet_18", "unknown backbone 'resnet_18'"),
])
def test_a_config_value_out_of_range(override, expected, tiny_dataset, tmp_path, capsys):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, tiny_dataset, override,
                                                       "logger=none"))
    assert expected in error_line(train, cfg, capsys)


def test_a_required_key_left_out_is_one_line(tmp_path, capsys):
    """``data=csv`` without ``data.root`` (``???`` in the config) was a traceback."""
    cfg = compose_config("train", [f"paths.output_dir={tmp_path}", "data=csv", "logger=none",
                                   f"data.train_list={tmp_path / 'train.csv'}",
                                   f"data.val_list={tmp_path / 'val.csv'}"])
    assert "data.root is required: give data.root=..." in error_line(train, cfg, capsys)


@pytest.mark.slow
def test_the_command_line_prints_one_line_and_a_traceback_only_when_asked(tiny_dataset,
                                                                          tmp_path):
    overrides = tiny_train_overrides(tmp_path, tiny_dataset, "data.num_frames=0", "logger=none")
    line = single_error_line(run("train", *overrides))
    assert "num_frames must be >= 1, got 0" in line
    full = run("train", *overrides, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode != 0 and "Traceback" in full.stderr  # asked for


@pytest.mark.parametrize(("content", "command"), [(b"", evaluate), (b"just text\n", export)])
def test_an_unreadable_or_foreign_checkpoint(content, command, tmp_path, capsys):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    name = "export" if command is export else "eval"
    extra = f"output={tmp_path / 'model.pt'}" if command is export else "subsets=[val]"
    cfg = compose_config(name, [f"ckpt_path={path}", f"paths.output_dir={tmp_path}", extra])
    line = error_line(command, cfg, capsys)
    assert str(path) in line and "cannot be read as a checkpoint" in line
    torch.save({"weights": torch.zeros(2)}, path)
    assert "is not a vidtl checkpoint" in error_line(command, cfg, capsys)


def test_a_missing_optional_package_says_how_to_install_it():
    assert one_line(ModuleNotFoundError("No module named 'onnx'", name="onnx")) == (
        "the optional package 'onnx' is not installed; pip install 'vidtl[export]'")
    assert one_line(ModuleNotFoundError("x", name="numpy")) is None  # not optional: a bug
    assert one_line(KeyError("a bug")) is None


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


class _RaisesOnDelete:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_worker_death_seen_again_at_loader_teardown_is_one_warning(capsys, caplog,
                                                                       monkeypatch):
    """PyTorch's SIGCHLD handler raises the same death in the loader's ``__del__``: the hook
    vidtl installs makes it a warning; any other unraisable error still reaches Python's hook."""
    monkeypatch.setattr(sys, "unraisablehook", quiet_worker_teardown)
    _RaisesOnDelete(RuntimeError("DataLoader worker (pid 7) is killed by signal: Killed. "))
    assert "Exception ignored" not in capsys.readouterr().err
    assert "killed by signal" in caplog.text and "shut down" in caplog.text
    _RaisesOnDelete(ValueError("something else"))
    assert "Exception ignored" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_loader_worker_names_the_cause_and_keeps_the_checkpoint(tiny_dataset,
                                                                         tmp_path):
    """SIGKILL to a DataLoader worker, as the out-of-memory killer sends it, mid-epoch."""
    overrides = tiny_train_overrides(tmp_path / "run", tiny_dataset, "trainer.max_epochs=3",
                                     "trainer.limit_train_batches=null", "logger=none",
                                     "data.num_workers=1", "checkpoint_every_n_steps=1")
    process = subprocess.Popen([sys.executable, "-m", "vidtl.cli.train", *overrides],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline, killed = time.monotonic() + 300, False
    while time.monotonic() < deadline and process.poll() is None and not killed:
        if last.is_file():
            for child in _children(process.pid):
                if "pt_data_worker" in Path(f"/proc/{child}/comm").read_text() or (
                        b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes()):
                    os.kill(child, signal.SIGKILL)
                    killed = True
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=120)
    assert killed, "no loader worker was found to kill"
    assert process.returncode == 2, stderr[-3000:]
    # PyTorch's SIGCHLD handler raises the death again while the dead worker's loader is torn
    # down ("Exception ignored in ...__del__" with a traceback): vidtl's line is all there is.
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    line = next(x for x in stderr.splitlines() if x.startswith("error: "))
    assert "worker" in line and "out-of-memory killer" in line and "resume=auto" in line
    assert torch.load(last, weights_only=True)["global_step"] >= 1  # intact


def test_a_dataset_of_only_broken_videos_ends_in_one_line(tiny_dataset, tmp_path, capsys):
    """Issue 24: "no readable video among N tried" came back from a loader worker as a
    RuntimeError traceback; it is one line, the worker's own message, like every user error."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_dataset, broken)
    for video in broken.rglob("*.avi"):
        video.write_bytes(b"not a video\n" * 10)
    cfg = compose_config("train", tiny_train_overrides(
        tmp_path / "run", broken, "logger=none", "data.num_workers=1"))
    line = error_line(train, cfg, capsys)
    assert "no readable video among" in line and "Caught" not in line
    assert "Traceback" not in line and "DataLoader worker" not in line


def test_a_target_that_moved_in_0_5_says_where_it_went():
    from vidtl.cli.errors import missing_target

    message = ("Error locating target 'vidtl.cli.sweep_table.SweepTable', set env var "
               "HYDRA_FULL_ERROR=1 to see chained exception.\nfull_key: hydra.callbacks.sweep")
    assert "write 'vidtl.sweeps.sweep_table.SweepTable'" in missing_target(message)
    assert "does not exist in vidtl" in missing_target(message.replace("cli.sweep", "cli.sweepx"))
