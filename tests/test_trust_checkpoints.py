"""Checkpoints that cannot run code: crafted configs are refused before anything is built,
pickled objects are never unpickled, and a damaged checkpoint is passed over by resume=auto."""

from __future__ import annotations

import copy
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidtl.core.errors import UserError
from vidtl.core.trusted_targets import UntrustedTargetError, check_targets, is_trusted
from vidtl.inference.checkpoint_model import (
    UnreadableCheckpointError,
    load_checkpoint,
    load_trained_model,
)
from vidtl.training.resume_point import resume_point


def crafted(tiny_checkpoint: Path, tmp_path: Path, edit) -> Path:
    """A copy of the tiny checkpoint whose saved config ``edit`` changed."""
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["vidtl"]["config"] = copy.deepcopy(checkpoint["vidtl"]["config"])
    edit(checkpoint["vidtl"]["config"])
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path


def attacks(victim: Path, source: Path) -> dict[str, object]:
    """Each one a config edit that would write or overwrite ``victim`` if it were built."""
    return {
        "open truncates": lambda c: c["model"]["backbone"].update(
            {"_target_": "builtins.open", "_args_": [str(victim), "w"]}),
        "copyfile nested in args": lambda c: c["model"]["temporal"].update(
            {"kernel": {"_target_": "shutil.copyfile", "_args_": [str(source), str(victim)]}}),
        "numpy.save in data": lambda c: c["data"].update(
            {"synthetic": {"_target_": "numpy.save", "_args_": [str(victim), [1]]}}),
        "torchvision file writer": lambda c: c["model"]["backbone"].update(
            {"_target_": "torchvision.io.write_png", "_args_": [[0], str(victim)]}),
        "vidtl function that writes": lambda c: c["data"].update(
            {"sampler": {"_target_": "vidtl.core.atomic.atomic_path", "_args_": [str(victim)]}}),
        "target made by an interpolation": lambda c: c["model"].update(
            {"lora": {"_target_": "${oc.decode:'builtins.open'}", "_args_": [str(victim), "w"]}}),
        "module subtree": lambda c: c.update(
            {"module": {"_target_": "os.remove", "_args_": [str(victim)]}}),
    }


@pytest.mark.parametrize("attack", list(attacks(Path("v"), Path("s"))))
def test_a_crafted_config_is_refused_before_anything_is_built(attack, tiny_checkpoint,
                                                              tmp_path):
    victim, source = tmp_path / "victim.txt", tmp_path / "source.txt"
    victim.write_text("precious")
    source.write_text("attacker")
    path = crafted(tiny_checkpoint, tmp_path, attacks(victim, source)[attack])
    with pytest.raises(UserError) as error:
        load_trained_model(path)
    assert str(path) in str(error.value)
    if isinstance(error.value, UntrustedTargetError):
        assert "custom_imports=" in str(error.value)
    else:  # the interpolation: refused as such, before its target is even looked at
        assert "interpolation" in str(error.value)
    assert victim.read_text() == "precious"


@pytest.mark.slow
def test_the_commands_refuse_it_in_one_line(tiny_checkpoint, tiny_dataset, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = crafted(tiny_checkpoint, tmp_path, attacks(victim, victim)["open truncates"])
    video = next(tiny_dataset.rglob("*.avi"))
    for command, extra in (("predict", f"input={video}"), ("evaluate", "subsets=[val]")):
        result = subprocess.run(
            [sys.executable, "-m", f"vidtl.cli.{command}", f"ckpt_path={path}", extra,
             f"paths.output_dir={tmp_path / command}"],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "builtins.open" in result.stderr and str(path) in result.stderr
        assert "Traceback" not in result.stderr
    assert victim.read_text() == "precious"


def test_the_users_own_prefix_is_trusted_only_when_the_command_names_it():
    config = {"model": {"temporal": {"_target_": "mypkg.pools.DiffPool", "_partial_": True}}}
    with pytest.raises(UntrustedTargetError, match=r"custom_imports=\[mypkg.pools\]"):
        check_targets(config, "run.ckpt")
    check_targets(config, "run.ckpt", trusted_prefixes=["mypkg"])
    assert not is_trusted("mypkgevil.X", ["mypkg"])  # a prefix ends at a dot
    assert is_trusted("torch.nn.Linear") and is_trusted("vidtl.models.temporal.AvgPool")
    assert is_trusted("torchvision.models.resnet.ResNet") and is_trusted("torch.nn.LSTM")
    assert not is_trusted("timm.models.load_checkpoint") and not is_trusted("torch.load")
    # model builders download by default (torchvision's detection models): not trusted
    assert not is_trusted("torchvision.models.resnet18")
    assert not is_trusted("torchvision.models.detection.fasterrcnn_resnet50_fpn")
    # a class reached through another module that a trusted one imports is not trusted
    assert not is_trusted("vidtl.training.module.L.pytorch.LightningModule")
    assert not is_trusted("vidtl.training.module.MulticlassAccuracy")  # torchmetrics' class


class Touch:
    """Unpickling this object creates a file: code that ran from a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_pickled_code_in_a_checkpoint_never_runs(tiny_checkpoint, tmp_path):
    marker = tmp_path / "code_ran"
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["payload"] = Touch(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    with pytest.raises(UnreadableCheckpointError, match="weights_only=True"):
        load_checkpoint(evil)
    with pytest.raises(UnreadableCheckpointError, match="evil.ckpt"):
        resume_point(None, str(evil), tmp_path / "run")
    assert not marker.exists()


def test_a_foreign_or_truncated_checkpoint_is_one_clear_error(tiny_checkpoint, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(UnreadableCheckpointError, match="truncated.ckpt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(UserError, match="not a vidtl checkpoint"):
        load_checkpoint(foreign)


def test_resume_auto_passes_over_a_truncated_last_checkpoint(tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    older = run / "checkpoints" / "epoch=0-step=2.ckpt"
    older.write_bytes(tiny_checkpoint.read_bytes())
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(tiny_checkpoint.read_bytes()[:10_000])  # a crash while it was written
    assert resume_point("auto", None, run).path == str(older)
    older.write_bytes(b"")
    with pytest.raises(UserError, match="none of the 2 checkpoints"):
        resume_point("auto", None, run)
    hpc = run / "hpc_ckpt_1.ckpt"  # what Lightning saves when SLURM preempts
    hpc.write_bytes(tiny_checkpoint.read_bytes())
    assert resume_point("auto", None, run).path == str(hpc)
