"""A 2-class task read as a detector: precision, recall, F1, ROC-AUC and PR-AUC in metrics.json
(exact against scikit-learn on the model's own scores), PR and ROC curves in the run folder,
and an operating point chosen on validation that predict and export apply."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics
from helpers import compose_config, make_video, tiny_train_overrides

import vidtl
from vidtl.cli.export import export
from vidtl.cli.predict import predict
from vidtl.cli.train import train
from vidtl.core.errors import UserError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory) -> Path:
    """<root>/{train,val,test}/{fight,no_fight}/*.mp4: real clips, 4/3/3 per class."""
    root = tmp_path_factory.mktemp("fights")
    seed = 0
    for subset, count in (("train", 4), ("val", 3), ("test", 3)):
        for name in ("fight", "no_fight"):
            for number in range(count):
                seed += 1
                make_video(root / subset / name / f"{name}_{number}.mp4", seed=seed)
    return root


@pytest.fixture(scope="module")
def detector_run(two_classes, tmp_path_factory):
    out = tmp_path_factory.mktemp("detector")
    metrics = train(compose_config("train", tiny_train_overrides(
        out, two_classes, "data=folder", "eval.positive_class=fight",
        "eval.threshold=recall@0.9", "trainer.max_epochs=2", "logger=none",
        "trainer.limit_train_batches=null", "trainer.limit_val_batches=null",
        "trainer.limit_test_batches=null")))
    return out, metrics


def test_detection_metrics_are_exact_against_sklearn(detector_run, two_classes):
    out, _ = detector_run
    saved = json.loads((out / "metrics.json").read_text())
    model = vidtl.load(saved["evaluated_checkpoint"], device="cpu")
    assert list(model.thresholds) == ["fight"]
    videos = sorted((two_classes / "test").rglob("*.mp4"))
    scores = model.probabilities([str(v) for v in videos]).numpy()[:, 0]  # fight is class 0
    truth = np.array([v.parent.name == "fight" for v in videos], dtype=np.int64)
    predicted = (scores >= model.thresholds["fight"]).astype(np.int64)
    assert saved["test/roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(truth, scores),
                                                  abs=1e-5)
    assert saved["test/pr_auc"] == pytest.approx(
        sklearn_metrics.average_precision_score(truth, scores), abs=1e-5)
    for key, metric in (("precision", sklearn_metrics.precision_score),
                        ("recall", sklearn_metrics.recall_score),
                        ("f1", sklearn_metrics.f1_score)):
        assert saved[f"test/{key}"] == pytest.approx(metric(truth, predicted, zero_division=0),
                                                     abs=1e-5), key
    assert saved["test/threshold"] == pytest.approx(model.thresholds["fight"], abs=1e-6)
    assert "test/top1" in saved  # the single-label metrics stay
    assert saved["val/recall"] >= 0.9  # the operating point chosen on validation


def test_curves_and_operating_point_files_are_written(detector_run):
    out, _ = detector_run
    for name in ("pr_curve.png", "roc_curve.png"):
        assert (out / name).read_bytes()[:8] == PNG
    [row] = list(csv.DictReader((out / "detection.csv").open()))
    saved = json.loads((out / "metrics.json").read_text())
    assert row["positive_class"] == "fight"
    assert float(row["roc_auc"]) == pytest.approx(saved["test/roc_auc"], abs=1e-5)
    assert (out / "confusion_matrix.png").exists()
    threshold = saved["test/threshold"]
    for row in csv.DictReader((out / "predictions.csv").open()):
        assert int(row["detected"]) == (float(row["fight_probability"]) >= threshold)


def test_predict_and_export_apply_the_operating_point(detector_run, two_classes, tmp_path):
    out, _ = detector_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    model = vidtl.load(checkpoint, device="cpu")
    threshold = model.thresholds["fight"]
    rows = predict(compose_config("predict", [f"ckpt_path={checkpoint}",
                                              f"input={two_classes / 'test'}", "output=json",
                                              "device=cpu", "num_workers=0"]))
    for row in rows:
        probability = model.probabilities(row["video"])[0, 0].item()
        assert row["detected"] == ([["fight", pytest.approx(probability, abs=1e-5)]]
                                   if probability >= threshold else [])
    path = export(compose_config("export", [f"ckpt_path={checkpoint}", "format=torchscript",
                                            f"output={tmp_path / 'm.pt'}"]))
    description = json.loads(path.with_name(path.name + ".json").read_text())
    assert description["positive_class"] == "fight"
    assert description["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert description["threshold_rule"] == "recall@0.9"


def test_an_unknown_positive_class_is_named(two_classes, tmp_path):
    with pytest.raises(UserError, match="eval.positive_class='fights' is not a class"):
        train(compose_config("train", tiny_train_overrides(
            tmp_path, two_classes, "data=folder", "eval.positive_class=fights",
            "logger=none")))
    with pytest.raises(UserError, match="eval.threshold"):
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "b", two_classes, "data=folder", "eval.threshold=precision@2",
            "logger=none")))


def test_logits_aggregation_reads_the_detector_on_probabilities(detector_run, tmp_path):
    from vidtl.cli.evaluate import evaluate

    out, _ = detector_run
    saved = json.loads((out / "metrics.json").read_text())
    found = evaluate(compose_config("eval", [
        f"ckpt_path={saved['evaluated_checkpoint']}", f"paths.output_dir={tmp_path}",
        "subsets=[test]", "view_aggregation=logits", "logger=none", "data.num_workers=0"]))
    for key in ("precision", "recall", "f1", "roc_auc", "pr_auc", "threshold"):
        assert found[f"test/{key}"] == pytest.approx(saved[f"test/{key}"], abs=1e-5), key
    [row] = list(csv.DictReader((tmp_path / "detection.csv").open()))
    assert float(row["threshold"]) == pytest.approx(saved["test/threshold"], abs=1e-5)


def test_a_detectors_timeline_marks_the_spans_at_or_above_its_threshold(detector_run, tmp_path,
                                                                      capsys):
    out, _ = detector_run
    checkpoint = json.loads((out / "metrics.json").read_text())["evaluated_checkpoint"]
    threshold = vidtl.load(checkpoint, device="cpu").thresholds["fight"]
    video = make_video(tmp_path / "camera.mp4", num_frames=150, seed=7)
    capsys.readouterr()
    predict(compose_config("predict", [
        f"ckpt_path={checkpoint}", f"input={video}", "mode=timeline", "output=json",
        f"output_dir={tmp_path / 'timeline'}", "timeline.min_segment_s=0", "device=cpu",
        "timeline.window_s=2.0"]))
    windows = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    rows = list(csv.DictReader((tmp_path / "timeline" / "timeline.csv").open()))
    assert len(windows) == len(rows) > 3
    for window, row in zip(windows, rows, strict=True):
        above = float(row["fight"]) >= threshold
        assert [name for name, _ in window["detected"]] == (["fight"] if above else [])
    segments = list(csv.DictReader((tmp_path / "timeline" / "segments.csv").open()))
    assert {s["label"] for s in segments} <= {"fight"}
    assert bool(segments) == any(float(r["fight"]) >= threshold for r in rows)
