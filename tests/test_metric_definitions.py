"""One definition per metric name: ``mean_class_acc`` is the mean, over the classes present in
the evaluated split, of each class's top-1 accuracy, for clips (val/, test/clip_) and videos
(test/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidtl.evaluation.mean_class_accuracy import MeanClassAccuracy
from vidtl.evaluation.video_results import VideoResults
from vidtl.training.module import accuracy_metrics

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
