"""The real train and eval entry points, composed through Hydra, on tiny real videos."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import compose_config, make_video, tiny_train_overrides

from vidtl.cli.evaluate import CheckpointMismatchError, evaluate
from vidtl.cli.train import train
from vidtl.data.annotations.formats import DatasetLayoutError

REQUIRED = {"val/top1", "val/top5", "val/mean_class_acc", "skipped_videos", "train_clips_per_s"}



@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    cfg = compose_config("train", tiny_train_overrides(out, tiny_dataset))
    metrics = train(cfg)
    return out, metrics


def test_train_writes_metrics_and_checkpoints(trained_run):
    out, metrics = trained_run
    saved = json.loads((out / "metrics.json").read_text())
    assert REQUIRED | {"test/top1", "test/top5", "test/mean_class_acc"} <= set(saved)
    assert saved == json.loads(json.dumps(metrics))
    assert saved["skipped_videos"] == 0 and saved["train_clips_per_s"] > 0
    assert 0 <= saved["val/top1"] <= saved["val/top5"] <= 1
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not (out / "skipped_videos.txt").exists()
    # UCF101 layout: val is the test list, so the final weights are tested, not the best by
    # val; they are kept as a file, which results.csv and vidtl-eval can name
    assert saved["evaluated_weights"] == "final" and saved["validated_on"] == "test list"
    assert saved["evaluated_checkpoint"] == str(out / "checkpoints" / "final.ckpt")
    assert (out / "checkpoints" / "final.ckpt").is_file()


def test_separate_val_split_evaluates_the_best_checkpoint(tmp_path):
    root = tmp_path / "folder"
    for split in ("train", "val", "test"):
        for label, cls in enumerate(("a", "b")):
            for i in range(2):
                make_video(root / split / cls / f"{i}.avi", seed=label)
    out = tmp_path / "run"
    metrics = train(compose_config("train", tiny_train_overrides(out, root, "data=folder")))
    assert metrics["evaluated_checkpoint"].startswith(str(out / "checkpoints" / "epoch_"))
    assert {"val/top1", "test/top1"} <= set(metrics)


def test_checkpoint_is_safe_to_load_and_self_describing(trained_run):
    import torch

    out, _ = trained_run
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    record = checkpoint["vidtl"]
    assert record["class_names"][:2] == ["MoveRight", "MoveLeft"]
    assert record["config"]["model"]["backbone"]["name"] == "test_efficientnet"
    assert record["config"]["data"]["num_frames"] == 2
    assert "classifier" not in checkpoint["hyper_parameters"]


def test_eval_of_the_checkpoint(trained_run, tmp_path):
    out, train_metrics = trained_run
    cfg = compose_config("eval", [
        f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}",
        f"paths.output_dir={tmp_path}",
        "data.num_workers=0",
        "trainer.accelerator=cpu",
    ])
    metrics = evaluate(cfg)
    assert REQUIRED | {"test/top1"} <= set(json.loads((tmp_path / "metrics.json").read_text()))
    assert metrics["val/top1"] == pytest.approx(metrics["test/top1"])  # ucf101: val = test list


def test_eval_with_another_data_config_keeps_the_models_clip_geometry(trained_run,
                                                                     tiny_dataset, tmp_path,
                                                                     caplog):
    """Issue 24: ``vidtl-eval data=<format>`` evaluated at that format's default geometry (224
    px crops, 8 frames) instead of the model's, without a word. Now the metrics are those of
    the validation during training, and a key given anyway is said to differ."""
    out, train_metrics = trained_run
    common = [f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "data=ucf101",
              f"data.root={tiny_dataset}", "data.num_workers=0", "data.batch_size=4",
              "trainer.limit_val_batches=2", "subsets=[val]", "logger=none"]
    metrics = evaluate(compose_config("eval", [*common, f"paths.output_dir={tmp_path / 'a'}"]))
    assert metrics["val/top1"] == pytest.approx(train_metrics["val/top1"])
    assert metrics["val/loss"] == pytest.approx(train_metrics["val/loss"], rel=1e-5)
    assert "differs from the" not in caplog.text
    evaluate(compose_config("eval", [*common, f"paths.output_dir={tmp_path / 'b'}",
                                     "data.crop_size=48"]))
    assert "data.crop_size=48 differs from the 32 the model was trained with" in caplog.text


def test_eval_refuses_data_with_another_class_count(trained_run, tmp_path):
    out, _ = trained_run
    root = tmp_path / "two_classes"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            make_video(root / split / cls / "v.avi")
    cfg = compose_config("eval", [
        f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}",
        f"paths.output_dir={tmp_path / 'eval'}",
        "data=folder",
        f"data.root={root}",
        "data.num_workers=0",
    ])
    message = "predicts 8 classes but the dataset .* has 2"
    with pytest.raises(CheckpointMismatchError, match=message):
        evaluate(cfg)


def test_broken_videos_are_skipped_and_reported(tiny_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    empty = root / "MoveRight" / "zero_bytes.mp4"
    empty.write_bytes(b"")
    good = make_video(tmp_path / "good.mp4", codec="h264", num_frames=20)
    truncated = root / "MoveLeft" / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    fake = root / "ZoomIn" / "not_a_video.mp4"
    fake.write_text("this is a text file\n")
    with open(root / "ucfTrainTestlist" / "trainlist01.txt", "a") as lines:
        lines.write("MoveRight/zero_bytes.mp4 1\nMoveLeft/truncated.mp4 2\n"
                    "ZoomIn/not_a_video.mp4 5\n")
    out = tmp_path / "run"
    overrides = tiny_train_overrides(out, root, "trainer.limit_train_batches=null",
                                     "trainer.max_epochs=2")
    metrics = train(compose_config("train", overrides))
    assert metrics["skipped_videos"] == 3
    listed = [line.split("\t")[0] for line in (out / "skipped_videos.txt").read_text().splitlines()]
    assert sorted(listed) == sorted(str(p) for p in (empty, truncated, fake))
    import torch

    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1  # rewritten after the final epoch, not only when val/top1 improved


def test_missing_root_stops_at_start(tmp_path):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, tmp_path / "no_such_dataset"))
    with pytest.raises(DatasetLayoutError, match="no_such_dataset does not exist"):
        train(cfg)


def test_csv_label_unseen_in_train_stops_at_start(tmp_path):
    root = tmp_path / "c"
    make_video(root / "a.avi")
    (root / "train.csv").write_text("a.avi,jump\na.avi,run\n")
    (root / "val.csv").write_text("path,label\na.avi,run\na.avi,swim\n")
    cfg = compose_config("train", tiny_train_overrides(
        tmp_path / "run", root, "data=csv", "data.train_list=train.csv", "data.val_list=val.csv"))
    with pytest.raises(DatasetLayoutError, match=r"val.csv:3: label 'swim'"):
        train(cfg)


def test_wandb_logger_offline(tiny_dataset, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    cfg = compose_config("train", tiny_train_overrides(out, tiny_dataset, "logger=wandb",
                                                       "trainer.limit_train_batches=1",
                                                       "trainer.limit_val_batches=1", "test=false"))
    train(cfg)
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    import wandb

    assert wandb.run is None  # finished, so the next job starts its own run


@pytest.mark.slow
def test_multirun_two_jobs(tiny_dataset, tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [o for o in tiny_train_overrides(tmp_path, tiny_dataset)
                 if not o.startswith("paths.output_dir")]
    command = [sys.executable, "-m", "vidtl.cli.train", "-m", "optimizer.lr=0.01,0.001",
               f"hydra.sweep.dir={sweep}", "trainer.limit_train_batches=1",
               "trainer.limit_val_batches=1", "test=false", *overrides]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    last_line = result.stdout.strip().splitlines()[-1]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, lr in zip(jobs, ["0.01", "0.001"]):
        assert (job / ".hydra" / "config.yaml").is_file()
        assert f"optimizer.lr={lr}" in (job / ".hydra" / "overrides.yaml").read_text()
        assert REQUIRED <= set(json.loads((job / "metrics.json").read_text()))
        assert (job / "checkpoints" / "last.ckpt").is_file()
    assert json.loads(last_line) == json.loads((jobs[1] / "metrics.json").read_text())
    with (sweep / "results.csv").open() as table:  # one row per job: swept value, metrics
        rows = list(csv.DictReader(table))
    assert [(r["job"], r["optimizer.lr"], r["status"]) for r in rows] == [
        ("0", "0.01", "done"), ("1", "0.001", "done")]
    assert float(rows[1]["val/top1"]) == json.loads((jobs[1] / "metrics.json").read_text())[
        "val/top1"]
    assert "trainer.limit_train_batches" not in rows[0]  # the same in every job: not swept


@pytest.mark.parametrize("group,options", [
    ("data", ["synthetic", "ucf101", "hmdb51", "kinetics400", "ssv2", "folder", "csv"]),
    ("model/backbone", ["efficientnet_lite0", "resnet18", "resnet50", "vgg16", "timm"]),
    ("model/temporal", ["avg", "max"]),
    ("optimizer", ["sgd", "adamw"]),
    ("scheduler", ["cosine", "none"]),
    ("trainer", ["default", "cpu", "gpu", "ddp"]),
    ("logger", ["csv", "wandb", "tensorboard", "none"]),
    ("debug", ["fdr", "overfit", "limit"]),
])
def test_every_config_option_composes(group, options, tmp_path):
    for option in options:
        cfg = compose_config("train", [f"{group}={option}", f"paths.output_dir={tmp_path}"])
        assert cfg.data.format and cfg.data.num_frames >= 1
        assert cfg.trainer._target_ == "lightning.Trainer"


def test_cli_prints_one_clear_message_for_bad_input(tmp_path):
    command = [sys.executable, "-m", "vidtl.cli.train", f"hydra.run.dir={tmp_path / 'run'}",
               "data=ucf101", f"data.root={tmp_path / 'UCF-101'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 2
    assert f"error: dataset root {tmp_path / 'UCF-101'} does not exist" in result.stderr
    assert "expected UCF101 layout" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bf16_channels_last_and_compile_train_and_the_checkpoint_evaluates(tiny_dataset,
                                                                           tmp_path):
    out = tmp_path / "run"
    metrics = train(compose_config("train", tiny_train_overrides(
        out, tiny_dataset, "model.channels_last=true", "model.compile=true",
        "trainer.precision=bf16-mixed", "trainer.max_epochs=1", "test=false", "logger=none")))
    assert metrics["train_clips_per_s"] > 0 and metrics["val/top1"] is not None
    import torch

    checkpoint = out / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)  # compiled in place: same names
    evaluated = evaluate(compose_config("eval", [f"ckpt_path={checkpoint}",
                                                 f"paths.output_dir={tmp_path / 'eval'}",
                                                 "subsets=[val]", "data.num_workers=0",
                                                 "trainer.accelerator=cpu", "logger=none"]))
    assert evaluated["val/top1"] is not None
