"""task=multilabel end to end through the real entry points: a CSV list with several labels per
row trains (sigmoid, BCE), evaluates (mAP, F1 in metrics.json, per-class AP), predicts the
classes above their thresholds, exports (ONNX sigmoid scores equal torch's) and draws a
timeline; the metrics are checked against scikit-learn on the model's own scores."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics
import torch
from helpers import compose_config, tiny_train_overrides
from multilabel_data import TAGS, tags_of, write_multilabel_csv

import vidtl
from vidtl.cli.evaluate import evaluate
from vidtl.cli.export import export
from vidtl.cli.predict import predict
from vidtl.cli.train import train
from vidtl.core.errors import UserError

CSV_DATA = ["data=csv", "data.train_list=train.csv", "data.val_list=val.csv",
            "data.test_list=test.csv", "task=multilabel", "trainer.max_epochs=2",
            "trainer.limit_train_batches=null", "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null"]


@pytest.fixture(scope="module")
def multilabel_root(tmp_path_factory):
    return write_multilabel_csv(tmp_path_factory.mktemp("multilabel"))


@pytest.fixture(scope="module")
def multilabel_run(multilabel_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("multilabel_run")
    metrics = train(compose_config("train", tiny_train_overrides(
        out, multilabel_root, *CSV_DATA, "logger=none", "module.pos_weight=balanced",
        "module.label_smoothing=0.1", "module.mixup_alpha=0.4")))
    return out, metrics


def test_run_reports_map_and_f1_and_chooses_checkpoints_on_map(multilabel_run):
    out, metrics = multilabel_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("val/mAP", "val/f1_micro", "val/f1_macro", "test/mAP", "test/f1_micro",
                "test/f1_macro", "test/precision_micro", "test/recall_micro", "test/loss"):
        assert 0 <= saved[key] <= 1 or key.endswith("loss"), key
    assert "test/top1" not in saved and "val/top1" not in saved
    assert saved["evaluated_weights"] == "best epoch by validation"
    config = compose_config("train", ["task=multilabel"])
    assert config.callbacks.model_checkpoint.monitor == "val/mAP"
    assert config.optimized_metric == "val/mAP"


def test_per_class_csv_and_test_map_match_sklearn_on_the_models_scores(multilabel_run,
                                                                      multilabel_root):
    out, _ = multilabel_run
    saved = json.loads((out / "metrics.json").read_text())
    model = vidtl.load(saved["evaluated_checkpoint"], device="cpu")
    test = list(csv.reader((multilabel_root / "test.csv").open()))[1:]
    scores = model.probabilities([str(multilabel_root / row[0]) for row in test]).numpy()
    targets = np.array([[tag in row[1].split(";") for tag in model.class_names]
                        for row in test], dtype=np.int64)
    kept = targets.sum(0) > 0  # the protocol drops classes without a positive
    expected = sklearn_metrics.average_precision_score(targets[:, kept], scores[:, kept],
                                                       average="macro")
    assert saved["test/mAP"] == pytest.approx(expected, abs=1e-5)
    thresholds = np.array([model.thresholds[name] for name in model.class_names])
    predicted = (scores >= thresholds).astype(np.int64)
    assert saved["test/f1_micro"] == pytest.approx(sklearn_metrics.f1_score(
        targets, predicted, average="micro", zero_division=0), abs=1e-5)
    assert saved["test/f1_macro"] == pytest.approx(sklearn_metrics.f1_score(
        targets, predicted, average="macro", zero_division=0), abs=1e-5)
    rows = {r["class"]: r for r in csv.DictReader((out / "per_class.csv").open())}
    assert set(rows) == set(TAGS)
    for c, name in enumerate(model.class_names):
        assert int(rows[name]["positives"]) == targets[:, c].sum()
        if targets[:, c].any():
            assert float(rows[name]["average_precision"]) == pytest.approx(
                sklearn_metrics.average_precision_score(targets[:, c], scores[:, c]), abs=1e-5)
        assert float(rows[name]["threshold"]) == pytest.approx(thresholds[c], abs=1e-6)
    predictions = list(csv.DictReader((out / "predictions.csv").open()))
    assert [set(r["labels"].split(";")) for r in predictions] == [
        set(tags_of(int(r["video"][-6:-4]))) for r in predictions]


def test_thresholds_are_saved_in_the_checkpoint_and_predict_applies_them(
        multilabel_run, multilabel_root, capsys):
    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model = vidtl.load(checkpoint, device="cpu")
    assert torch.equal(state["operating_points.thresholds"],
                       model.module.operating_points.thresholds)
    video = multilabel_root / "clips" / "v15.mp4"
    prediction = model.predict(str(video), top_k=3)
    probabilities = model.probabilities(str(video))[0]
    expected = {name for c, name in enumerate(model.class_names)
                if probabilities[c] >= model.thresholds[name]}
    assert set(prediction.detected) == expected
    assert prediction.detected_probabilities == sorted(prediction.detected_probabilities,
                                                       reverse=True)
    capsys.readouterr()
    [row] = predict(compose_config("predict", [f"ckpt_path={checkpoint}", f"input={video}",
                                               "output=json", "device=cpu"]))
    assert {name for name, _ in row["detected"]} == expected
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == row


def test_onnx_export_gives_the_same_sigmoid_scores_and_describes_thresholds(
        multilabel_run, tmp_path):
    import onnxruntime

    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    path = export(compose_config("export", [f"ckpt_path={checkpoint}", "format=onnx",
                                            f"output={tmp_path / 'm.onnx'}"]))
    description = json.loads((tmp_path / "m.onnx.json").read_text())
    model = vidtl.load(checkpoint, device="cpu")
    assert description["task"] == "multilabel"
    assert description["thresholds"] == pytest.approx(model.thresholds, abs=1e-6)
    clips = torch.randint(0, 256, (3, 2, 32, 32, 3), dtype=torch.uint8)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = torch.from_numpy(session.run(["logits"], {"clips": clips.numpy()})[0]).sigmoid()
    with torch.no_grad():
        ours = model.module.score_clips(clips.permute(0, 1, 4, 2, 3)).sigmoid()
    assert torch.allclose(exported, ours, atol=1e-4)


def test_eval_chooses_thresholds_again_by_another_rule(multilabel_run, tmp_path):
    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    metrics = evaluate(compose_config("eval", [
        f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path}", "eval.threshold=recall@1.0",
        "logger=none", "trainer.accelerator=cpu"]))
    assert metrics["val/recall_micro"] == 1.0  # every validation positive kept, per class
    rows = list(csv.DictReader((tmp_path / "per_class.csv").open()))
    assert len(rows) == len(TAGS)


def test_timeline_of_a_multilabel_model_writes_overlapping_segments(multilabel_run,
                                                                   tmp_path, capsys):
    from helpers import make_video

    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    video = make_video(tmp_path / "long.mp4", num_frames=150, seed=3)
    predict(compose_config("predict", [
        f"ckpt_path={checkpoint}", f"input={video}", "mode=timeline", "output=json",
        f"output_dir={tmp_path / 'timeline'}", "timeline.min_segment_s=0", "device=cpu",
        "timeline.window_s=2.0", "timeline.stride_s=1.0"]))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    model = vidtl.load(checkpoint, device="cpu")
    for line in lines:
        assert {name for name, _ in line["detected"]} <= set(model.class_names)
    segments = list(csv.DictReader((tmp_path / "timeline" / "segments.csv").open()))
    detected = {name for line in lines for name, _ in line["detected"]}
    assert {row["label"] for row in segments} == detected
    assert (tmp_path / "timeline" / "long_timeline.png").stat().st_size > 1000


def test_multilabel_data_without_the_task_is_refused(multilabel_root, tmp_path):
    overrides = [o for o in tiny_train_overrides(tmp_path, multilabel_root, *CSV_DATA,
                                                 "logger=none") if o != "task=multilabel"]
    with pytest.raises(UserError, match="add task=multilabel"):
        train(compose_config("train", overrides))


def test_balanced_sampling_and_single_label_pos_weight_are_refused(multilabel_root, tmp_path,
                                                                   tiny_dataset):
    with pytest.raises(UserError, match="balanced_sampling"):
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "a", multilabel_root, *CSV_DATA, "logger=none",
            "data.balanced_sampling=true")))
    with pytest.raises(UserError, match="pos_weight is for task=multilabel"):
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "b", tiny_dataset, "logger=none", "module.pos_weight=balanced")))


def test_feature_cache_and_adapters_train_multilabel_unchanged(multilabel_root, tmp_path):
    cached = train(compose_config("train", tiny_train_overrides(
        tmp_path / "cached", multilabel_root, *CSV_DATA, "logger=none",
        "finetune=linear_probe", "model/temporal=transformer", "feature_cache.enabled=true",
        "feature_cache.train_views=2", f"feature_cache.cache_dir={tmp_path / 'cache'}")))
    assert 0 <= cached["test/mAP"] <= 1
    again = train(compose_config("train", tiny_train_overrides(  # read from the cache
        tmp_path / "cached2", multilabel_root, *CSV_DATA, "logger=none",
        "finetune=linear_probe", "model/temporal=transformer", "feature_cache.enabled=true",
        "feature_cache.train_views=2", f"feature_cache.cache_dir={tmp_path / 'cache'}")))
    assert 0 <= again["val/mAP"] <= 1
    adapter = train(compose_config("train", tiny_train_overrides(
        tmp_path / "adapter", multilabel_root, *CSV_DATA, "logger=none",
        "model/backbone=timm", "model.backbone.name=vit_tiny_patch16_224",
        "+model.backbone.img_size=32", "+model.backbone.depth=2", "model/temporal=aim",
        "finetune=adapter", "data.num_frames=4")))
    assert 0 <= adapter["test/mAP"] <= 1 and adapter["trainable_share"] < 0.5


def test_multilabel_task_on_single_label_data_writes_multilabel_reports(tiny_dataset, tmp_path):
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "task=multilabel", "logger=none")))
    assert 0 <= metrics["test/mAP"] <= 1
    header = (tmp_path / "per_class.csv").read_text().splitlines()[0]
    assert header == "class,positives,average_precision,threshold,precision,recall,f1"
    assert not (tmp_path / "confusion_matrix.png").exists()
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert all(len(row["labels"].split(";")) == 1 for row in rows)  # one label each


def test_a_checkpoint_with_bad_thresholds_is_one_line_naming_it(multilabel_run, tmp_path):
    from vidtl.inference.checkpoint_model import CheckpointMismatchError

    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data["state_dict"]["operating_points.thresholds"] = torch.tensor([5, 5, 5])
    crafted = tmp_path / "crafted.ckpt"
    torch.save(data, crafted)
    with pytest.raises(CheckpointMismatchError,
                       match=r"crafted\.ckpt.*floating-point probabilities in \[0, 1\]"):
        vidtl.load(crafted, device="cpu")


@pytest.mark.slow
def test_two_processes_choose_the_thresholds_and_map_of_one(multilabel_run, tmp_path):
    """DDP on two CPU processes (gloo), 4 val and 4 test videos in batches of 3 (uneven
    shares): the gathered scores give the single process's thresholds and metrics."""
    import subprocess
    import sys

    out, _ = multilabel_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    common = [f"ckpt_path={checkpoint}", "data.num_workers=0", "data.batch_size=3",
              "logger=none", "trainer.accelerator=cpu"]
    single = evaluate(compose_config("eval", [*common, f"paths.output_dir={tmp_path / 'one'}"]))
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.evaluate", *common,
         f"paths.output_dir={tmp_path / 'two'}", "trainer=ddp", "trainer.devices=2"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    for key in ("val/mAP", "val/f1_micro", "test/mAP", "test/f1_micro", "test/f1_macro"):
        assert two[key] == pytest.approx(single[key], abs=1e-6), key
    one_rows = list(csv.DictReader((tmp_path / "one" / "per_class.csv").open()))
    two_rows = list(csv.DictReader((tmp_path / "two" / "per_class.csv").open()))
    assert [r["threshold"] for r in two_rows] == [r["threshold"] for r in one_rows]


def test_several_validation_sets_each_report_map(multilabel_root, tmp_path):
    overrides = [o for o in tiny_train_overrides(tmp_path, multilabel_root, *CSV_DATA,
                                                 "logger=none", "test=false")
                 if not o.startswith("data.val_list")]
    metrics = train(compose_config("train", [*overrides, "data.val_list=[val.csv,test.csv]"]))
    for key in ("val/mAP", "val/val/mAP", "val/test/mAP", "val/test/f1_micro"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["val/val/mAP"] == pytest.approx(metrics["val/mAP"])
