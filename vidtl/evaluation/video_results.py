"""Video-level results of a test run: scores per video, counted once, and their metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class VideoResults:
    """One row per video: its position in the dataset, true label and class scores (a
    multi-label model's: its multi-hot labels ``(N, K)`` and sigmoid scores)."""

    videos: np.ndarray  # int64 (N,)
    labels: np.ndarray  # int64 (N,), or float32 (N, K) multi-hot
    scores: np.ndarray  # float32 (N, K)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @classmethod
    def from_batches(cls, videos: list[torch.Tensor], labels: list[torch.Tensor],
                     scores: list[torch.Tensor]) -> VideoResults:
        """Concatenated batches (possibly gathered from several processes), each video kept
        once: the distributed sampler pads with repeats, and a broken video's replacement is
        the same video as another item."""
        if not videos:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
        video = torch.cat([v.reshape(-1) for v in videos]).cpu().numpy().astype(np.int64)
        multi_hot = bool(labels) and labels[0].ndim == 2
        label = (torch.cat([v.float() for v in labels]).cpu().numpy() if multi_hot else
                 torch.cat([v.reshape(-1) for v in labels]).cpu().numpy().astype(np.int64))
        score = torch.cat([s.reshape(-1, s.shape[-1]) for s in scores]).float().cpu().numpy()
        _, first = np.unique(video, return_index=True)  # sorted by video position
        return cls(video[first], label[first], score[first])

    def __len__(self) -> int:
        return len(self.videos)

    def predictions(self) -> np.ndarray:
        return self.scores.argmax(1)

    def topk_correct(self, k: int) -> np.ndarray:
        """Whether each video's label is among its ``k`` best scores."""
        k = min(k, self.scores.shape[1])
        best = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        return (best == self.labels[:, None]).any(1)

    def confusion_matrix(self, num_classes: int) -> np.ndarray:
        """``counts[true, predicted]``."""
        counts = np.zeros((num_classes, num_classes), np.int64)
        np.add.at(counts, (self.labels, self.predictions()), 1)
        return counts

    def per_class_accuracy(self, num_classes: int) -> np.ndarray:
        """Top-1 accuracy of each class (NaN for a class without videos)."""
        counts = self.confusion_matrix(num_classes)
        totals = counts.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, np.diag(counts) / np.maximum(totals, 1), np.nan)

    def metrics(self, num_classes: int) -> dict[str, float]:
        """Video-level top-1, top-5 (top-K for fewer classes) and mean-class accuracy."""
        if len(self) == 0:
            return {}
        per_class = self.per_class_accuracy(num_classes)
        return {
            "top1": float(self.topk_correct(1).mean()),
            "top5": float(self.topk_correct(5).mean()),
            "mean_class_acc": float(np.nanmean(per_class)),
        }
