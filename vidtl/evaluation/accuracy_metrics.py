"""The accuracy metrics of a single-label evaluation (``val/``, ``test/clip_``)."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vidtl.evaluation.mean_class_accuracy import MeanClassAccuracy


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """top-1, top-5 (or top-C for fewer classes) and mean class accuracy (over the classes
    present in the evaluated split: :mod:`vidtl.evaluation.mean_class_accuracy`)."""
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "mean_class_acc": MeanClassAccuracy(num_classes),
        },
        prefix=prefix,
        # Compute groups would merge these metrics when their first states happen to agree
        # (e.g. a first batch where top-1 and top-5 both count every clip): keep them apart.
        compute_groups=False,
    )
