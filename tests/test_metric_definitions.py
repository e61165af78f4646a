"""One definition per metric name: ``mean_class_acc`` is the mean, over the classes present in
the evaluated split, of each class's top-1 accuracy, for clips (val/, test/clip_) and videos
(test/)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vidtl.evaluation.accuracy_metrics import accuracy_metrics
from vidtl.evaluation.mean_class_accuracy import MeanClassAccuracy
from vidtl.evaluation.video_results import VideoResults

# Four classes; the split has samples of classes 0, 1 and 3 only, and class 2 is predicted
# (wrongly) for one sample of class 3.
LABELS = torch.tensor([0, 0, 0, 1, 1, 3, 3])
PREDICTED = torch.tensor([0, 0, 1, 1, 0, 3, 2])


def by_hand() -> float:
    """Class 0: 2 of 3; class 1: 1 of 2; class 3: 1 of 2; class 2 has no sample: left out."""
    return (2 / 3 + 1 / 2 + 1 / 2) / 3


def scores() -> torch.Tensor:
    logits = torch.full((len(LABELS), 4), -1.0)
    logits[torch.arange(len(LABELS)), PREDICTED] = 1.0
    return logits


def test_clip_metric_averages_over_the_classes_present_in_the_split() -> None:
    metrics = accuracy_metrics(4, "val/")
    metrics.update(scores(), LABELS)
    assert metrics.compute()["val/mean_class_acc"].item() == pytest.approx(by_hand())
    # torchmetrics' macro average counts the predicted-only class as 0: another number
    from torchmetrics.classification import MulticlassAccuracy
    macro = MulticlassAccuracy(4, average="macro")(scores(), LABELS).item()
    assert macro == pytest.approx((2 / 3 + 1 / 2 + 0 + 1 / 2) / 4)


def test_video_metric_has_the_same_definition() -> None:
    results = VideoResults(np.arange(len(LABELS)), LABELS.numpy(), scores().numpy())
    assert results.metrics(4)["mean_class_acc"] == pytest.approx(by_hand())


def test_metric_is_accumulated_over_batches() -> None:
    metric = MeanClassAccuracy(4)
    for part in (slice(0, 3), slice(3, 7)):
        metric.update(scores()[part], LABELS[part])
    assert metric.compute().item() == pytest.approx(by_hand())
    assert torch.isnan(MeanClassAccuracy(4).compute())


DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def undefined(names: set[str], docs: str) -> list[str]:
    """The names a run wrote that docs/metrics.md does not define."""
    missing = []
    for name in sorted(names):
        extra = re.fullmatch(r"val/night/(\w+)", name)
        if extra:
            found = "`val/<name>/top1`" in docs and f"`/{extra.group(1)}`" in docs or (
                f"`val/<name>/{extra.group(1)}`" in docs)
        elif name.startswith("lr-"):
            found = "`lr-<Optimizer>`" in docs
        else:
            found = f"`{name}`" in docs
        if not found:
            missing.append(name)
    return missing


def test_the_docs_define_every_metric_name_a_run_writes(tiny_dataset, tmp_path):
    """A tiny run with a further validation set and every logger row, its evaluation and its
    sweep table: every name they write is defined in docs/metrics.md."""
    from helpers import compose_config, tiny_train_overrides, write_csv_lists

    from vidtl.cli.evaluate import evaluate
    from vidtl.cli.train import train
    from vidtl.sweeps.sweep_table import sweep_rows

    _, val_list = write_csv_lists(tiny_dataset, tmp_path / "lists")
    night = val_list.rename(tmp_path / "lists" / "night.csv")
    run = tmp_path / "sweep" / "0"
    trained = train(compose_config("train", tiny_train_overrides(
        run, tiny_dataset, "logger=csv", f"data.extra_val_lists=[{night}]",
        "trainer.log_every_n_steps=1")))
    evaluated = evaluate(compose_config("eval", [
        f"ckpt_path={trained['evaluated_checkpoint']}", f"paths.output_dir={tmp_path / 'ev'}",
        "subsets=[val,test]", "data.num_workers=0", "trainer.accelerator=cpu", "logger=none",
        "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]))
    with open(run / "csv" / "metrics.csv", newline="") as file:
        logged = set(next(csv.reader(file)))
    (row,) = sweep_rows(tmp_path / "sweep")
    names = set(trained) | set(evaluated) | logged | set(row)
    assert {"train/loss", "val/night/top1", "test/clip_top1", "validated_on"} <= names
    assert any(name.startswith("lr-") for name in names)
    docs = DOCS.read_text()
    assert undefined(names, docs) == []
    assert undefined({"val/a_new_metric"}, docs) == ["val/a_new_metric"]
