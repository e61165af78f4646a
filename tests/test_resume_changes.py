"""Resuming with other settings (issue 24): every change is said; the optimizer's and the
schedule's, which the checkpoint would restore, either apply or stop the run."""

from __future__ import annotations

import json

import pytest
from helpers import compose_config, tiny_train_overrides

from vidtl.callbacks.resume_changes import config_changes
from vidtl.cli.train import train
from vidtl.core.errors import UserError


def resumed(tmp_path, tiny_dataset, tiny_checkpoint, *extra: str) -> tuple[dict, list[dict]]:
    """Resume the tiny run (1 epoch, AdamW lr 1e-3, weight decay 0.05, cosine) for a second
    epoch with ``extra``; the metrics and each step's learning rates and weight decays."""
    record = tmp_path / "steps.jsonl"
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "test=false", "logger=none", f"ckpt_path={tiny_checkpoint}",
        "trainer.max_epochs=2", "+callbacks.recorder._target_=helpers.LearningRateRecorder",
        f"+callbacks.recorder.path={record}", *extra)))
    return metrics, [json.loads(line) for line in record.read_text().splitlines()]


def test_a_new_learning_rate_is_refused_unless_applied(tiny_dataset, tiny_checkpoint, tmp_path):
    """Issue 24: ``ckpt_path=... optimizer.lr=0.1`` exited 0 with the config and W&B saying 0.1
    while the optimizer kept 0.001."""
    with pytest.raises(UserError, match=r"optimizer.lr=0.1 \(was 0.001\) would not take "
                                        r"effect; add resume_changes=apply"):
        resumed(tmp_path / "refused", tiny_dataset, tiny_checkpoint, "optimizer.lr=0.1")
    _, steps = resumed(tmp_path / "applied", tiny_dataset, tiny_checkpoint, "optimizer.lr=0.1",
                       "optimizer.weight_decay=0.2", "scheduler=none", "resume_changes=apply")
    assert steps and all(s["lr"] == [0.1] * len(s["lr"]) for s in steps)  # no schedule: 0.1
    assert all(s["weight_decay"] == [0.2] * len(s["weight_decay"]) for s in steps)


def test_the_schedule_continues_at_the_restored_step_with_the_new_rate(tiny_dataset,
                                                                       tiny_checkpoint,
                                                                       tmp_path):
    from vidtl.training.lr_schedules import cosine_with_warmup

    _, steps = resumed(tmp_path, tiny_dataset, tiny_checkpoint, "optimizer.lr=0.01",
                       "scheduler.warmup_epochs=0", "resume_changes=apply")
    # cosine over the 2 epochs of 2 steps each, from step 2 on (the checkpoint's)
    import torch

    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    factor = cosine_with_warmup(probe, total_steps=4, steps_per_epoch=2).lr_lambdas[0]
    assert [s["step"] for s in steps] == [2, 3]
    for step in steps:
        assert step["lr"][0] == pytest.approx(0.01 * factor(step["step"]))


def test_max_epochs_and_other_changes_are_listed_and_take_effect(tiny_dataset, tiny_checkpoint,
                                                                 tmp_path, caplog):
    metrics, steps = resumed(tmp_path, tiny_dataset, tiny_checkpoint, "trainer.max_epochs=3",
                             "module.label_smoothing=0.1")
    assert "was trained with trainer.max_epochs=1; this run has 3" in caplog.text
    assert "module.label_smoothing=0.0; this run has 0.1" in caplog.text
    assert max(s["step"] for s in steps) == 5  # epochs 2 and 3 of 2 steps each
    assert "val/top1" in metrics


def test_a_resume_after_max_steps_cut_an_epoch_says_what_is_not_read(tiny_dataset, tmp_path,
                                                                      caplog):
    """trainer.max_steps that ends an epoch early: Lightning counts the epoch as done, so a
    resume with a larger max_steps starts the next epoch; that is said, not left silent. An
    epoch that max_steps ends at its own end (2 batches here, limit_train_batches) is not."""
    def run(folder: str, *extra: str) -> None:
        train(compose_config("train", tiny_train_overrides(
            tmp_path / folder, tiny_dataset, "test=false", "logger=none",
            "trainer.max_epochs=3", *extra)))

    run("cut", "+trainer.max_steps=3")  # 2 steps an epoch: epoch 1 ends after its first
    run("whole", "+trainer.max_steps=2")  # epoch 0 ends at its end
    caplog.clear()
    run("cut", "+trainer.max_steps=-1", "resume=auto")
    assert "when trainer.max_steps ended epoch 1 after 1 of its 2 batches" in caplog.text
    caplog.clear()
    run("whole", "+trainer.max_steps=-1", "resume=auto")
    run("cut", "+trainer.max_steps=-1", "resume=auto", "trainer.max_epochs=4")
    assert "ended epoch" not in caplog.text and "trained with trainer.max_epochs=3" in caplog.text


def test_a_crafted_position_never_makes_the_max_steps_warning_a_traceback():
    from vidtl.training.resume_point import epoch_cut_short

    def checkpoint(position: dict, epoch_batches=4) -> dict:
        return {"global_step": 3, "loops": {"fit_loop": {"epoch_progress": {"current": {
            "processed": 2, "completed": 1}}}}, "Data": {"train_loader": position},
            "vidtl": {"config": {"trainer": {"max_steps": 3}}, "epoch_batches": epoch_batches}}

    assert "after 1 of its 4 batches" in epoch_cut_short(checkpoint({"epoch": 1, "batches": 1}))
    assert "after 2 of its 4" in epoch_cut_short(checkpoint({"epoch": 1, "consumed": [0, 1]}))
    assert "after 3 of its 4" in epoch_cut_short(checkpoint({"batches": 3, "consumed": 7}))
    for crafted in ({"consumed": 5}, {"batches": True}, {"batches": -1}, {}):
        assert epoch_cut_short(checkpoint(crafted)) is None
    assert epoch_cut_short(checkpoint({"batches": 1}, epoch_batches=True)) is None


def test_a_launch_id_from_a_checkpoint_is_plain_hex_or_ignored():
    from vidtl.training.resume_point import ResumePoint, start_of

    assert start_of(None) == (0, None) and start_of(ResumePoint()) == (0, None)
    assert start_of(ResumePoint("c.ckpt", {"launch_id": "ab12"}, 5)) == (5, "ab12")
    for crafted in ("\x1b[2Jab", "x" * 65, 7, ["ab"]):
        assert start_of(ResumePoint("c.ckpt", {"launch_id": crafted}, 5)) == (5, None)


def test_nan_settings_are_not_a_change():
    assert config_changes({"a": float("nan"), "b": 1}, {"a": float("nan"), "b": 1}) == {}


def test_bookkeeping_is_not_a_change():
    saved = {"paths": {"output_dir": "/a"}, "run_name": "x", "optimizer": {"lr": 1.0}}
    current = {"paths": {"output_dir": "/b"}, "run_name": "y", "optimizer": {"lr": 2.0},
               "resume": "auto"}
    assert config_changes(saved, current) == {"optimizer.lr": (1.0, 2.0)}
