"""Where a training run resumes, found from plain values (no command started)."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from vidtl.core.errors import UserError
from vidtl.training.checkpoint_file import CheckpointMismatchError, read_checkpoint
from vidtl.training.resume_point import (
    ResumePoint,
    check_same_classes,
    resumable_checkpoints,
    resume_point,
    resumed_changes,
)


def saved(path, step: int = 3, **record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "vidtl": record}, path)


def test_a_fresh_start_and_a_given_checkpoint(tmp_path):
    assert resume_point(None, None, tmp_path) == ResumePoint()
    given = tmp_path / "given.ckpt"
    saved(given, step=7, class_names=["a", "b"])
    point = resume_point(None, str(given), tmp_path / "run")
    assert point == ResumePoint(str(given), {"class_names": ["a", "b"]}, 7)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        resume_point(None, str(tmp_path / "missing.ckpt"), tmp_path)
    with pytest.raises(UserError, match="resume must be null or auto"):
        resume_point("yes", None, tmp_path)


def test_resume_auto_takes_the_newest_checkpoint_but_final(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    assert resume_point("auto", None, run) == ResumePoint()
    assert "no checkpoint in" in caplog.text and "starting afresh" in caplog.text
    older, last, final = (run / "checkpoints" / f"{n}.ckpt" for n in ("epoch_0", "last", "final"))
    for age, path in enumerate((final, last, older)):
        saved(path, step=age)
        os.utime(path, (1000 - age, 1000 - age))
    assert resumable_checkpoints(run) == [last, older]
    assert resume_point("auto", None, run).path == str(last)
    last.write_bytes(b"cut")
    assert resume_point("auto", None, run).path == str(older)
    assert "passing over" in caplog.text


def test_a_file_that_is_no_checkpoint_dictionary_is_refused(tmp_path):
    path = tmp_path / "list.ckpt"
    torch.save([1, 2], path)
    with pytest.raises(CheckpointMismatchError, match="holds a list"):
        read_checkpoint(path)


def test_a_resume_keeps_its_classes():
    point = ResumePoint("c.ckpt", {"class_names": ["a", "b"]}, 1)
    check_same_classes(point, 2)
    check_same_classes(ResumePoint(), 5)
    with pytest.raises(UserError, match="model of 2 classes and this data has 3.*init_from"):
        check_same_classes(point, 3)


def test_only_a_vidtl_resume_is_compared(tmp_path):
    current = {"optimizer": {"lr": 0.1}}
    assert resumed_changes(ResumePoint(), current, "refuse") is False
    assert resumed_changes(ResumePoint("c.ckpt", None, 1), current, "refuse") is False
    same = ResumePoint("c.ckpt", {"config": current}, 1)
    assert resumed_changes(same, current, "refuse") is False
    changed = ResumePoint("c.ckpt", {"config": {"optimizer": {"lr": 0.2}}}, 1)
    with pytest.raises(UserError):
        resumed_changes(changed, current, "refuse")
    assert resumed_changes(changed, current, "apply") is True
