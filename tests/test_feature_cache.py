"""Cached frame features: the head trains from features computed once, with the same results
as on decoded video."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from helpers import compose_config, tiny_train_overrides

from vidtl.cli.train import train
from vidtl.core.errors import UserError

CACHED = ["finetune=linear_probe", "model/temporal=transformer", "data.num_frames=4",
          "feature_cache.enabled=true", "feature_cache.train_views=2", "trainer.max_epochs=2",
          "trainer.limit_train_batches=null", "trainer.limit_val_batches=null",
          "trainer.limit_test_batches=null", "logger=csv"]


def last_logged(out, key: str) -> float:
    rows = [r for r in csv.DictReader((out / "csv" / "metrics.csv").open()) if r.get(key)]
    return float(rows[-1][key])


@pytest.fixture(scope="module")
def cached_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cached")
    metrics = train(compose_config("train", tiny_train_overrides(out, tiny_dataset, *CACHED)))
    return out, metrics


def test_validation_from_the_cache_matches_validation_on_decoded_video(cached_run):
    out, metrics = cached_run
    # During fit, val/* came from cached features; after it, the same final weights were
    # validated on the decoded videos (metrics.json).
    assert metrics["evaluated_weights"] == "final"
    assert last_logged(out, "val/top1") == pytest.approx(metrics["val/top1"])
    assert last_logged(out, "val/loss") == pytest.approx(metrics["val/loss"], rel=1e-2)


def test_the_cache_holds_every_view_and_is_reused(cached_run, tiny_dataset, tmp_path):
    out, metrics = cached_run
    (cache,) = (out / "data" / "feature_cache").glob("*.pt")
    tensors = torch.load(cache, weights_only=True)
    train_videos = len(tensors["train_labels"])
    assert tensors["train_features"].shape[:3] == (train_videos, 2, 4)  # N, views, frames
    assert not torch.equal(tensors["train_features"][:, 0], tensors["train_features"][:, 1])
    stamp = cache.stat().st_mtime_ns
    again = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, *CACHED, f"paths.data_dir={out / 'data'}")))
    assert cache.stat().st_mtime_ns == stamp  # read, not written again
    assert again["val/top1"] == pytest.approx(metrics["val/top1"])


@pytest.mark.parametrize("change,message", [
    (["model/temporal=tsm", "model/backbone=timm", "model.backbone.name=test_resnet"],
     "works after pooling"),
    (["finetune=full"], "frozen backbone"),
])
def test_the_cache_refuses_what_changes_the_backbone_features(tiny_dataset, tmp_path, change,
                                                              message):
    with pytest.raises(UserError, match=message):
        train(compose_config("train", tiny_train_overrides(tmp_path, tiny_dataset, *CACHED,
                                                           *change)))
    assert json.loads((tmp_path / "metrics.json").read_text())["skipped_videos"] == 0


def test_a_damaged_cache_is_made_again_with_a_warning(cached_run, tiny_dataset, tmp_path,
                                                      caplog):
    """Issue 24: a damaged cache was a traceback (shapes, keys, labels out of range), or, with
    NaN features, "val/loss": null and exit 0."""
    from vidtl.training.feature_cache import cache_problem

    out, _ = cached_run
    (cache,) = (out / "data" / "feature_cache").glob("*.pt")
    tensors = torch.load(cache, weights_only=True)
    expected = {"train": len(tensors["train_labels"]), "val": len(tensors["val_labels"]),
                "views": 2, "frames": 4, "features": tensors["train_features"].shape[-1],
                "classes": 8}
    assert cache_problem(tensors, expected) is None
    broken = {"nan": {**tensors, "val_features": tensors["val_features"] * float("nan")},
              "labels": {**tensors, "train_labels": tensors["train_labels"] + 100},
              "shape": {**tensors, "train_features": tensors["train_features"][:, :1]},
              "keys": {"train_features": tensors["train_features"]}}
    for name, damaged in broken.items():
        assert cache_problem(damaged, expected) is not None, name
    torch.save(broken["nan"], cache)  # the next run finds it damaged, warns, makes it again
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, *CACHED, f"paths.data_dir={out / 'data'}")))
    assert "is not usable" in caplog.text and metrics["val/loss"] is not None
    assert cache_problem(torch.load(cache, weights_only=True), expected) is None


def test_swapped_labels_are_another_cache_entry(tiny_dataset, tmp_path):
    """The key covers every video's label (and its file's size and time), not their count."""
    from helpers import write_csv_lists

    from vidtl.data.annotations.index import load_index
    from vidtl.training.feature_cache import videos_identity

    train_list, val_list = write_csv_lists(tiny_dataset, tmp_path / "lists")

    def identity() -> str:
        return videos_identity(load_index("csv", tiny_dataset, train_list=train_list,
                                          val_list=val_list))

    before = identity()
    rows = train_list.read_text().splitlines()
    labels = [row.rsplit(",", 1)[1] for row in rows[1:]]
    swapped = [rows[0]] + [f"{row.rsplit(',', 1)[0]},{label}"
                           for row, label in zip(rows[1:], labels[::-1])]
    train_list.write_text("\n".join(swapped) + "\n")
    assert identity() != before


def test_what_cached_features_would_silently_skip_is_refused_before_extraction():
    """A subclass that changes clip logits must say what it does to features; CutMix alone
    has no pixels to cut (both before any video is read)."""
    from torch import nn

    from vidtl.finetune.schedule import FinetuneSchedule
    from vidtl.models.backbones import create_backbone
    from vidtl.models.classifier import VideoClassifier
    from vidtl.models.temporal import AvgPool
    from vidtl.training.feature_cache import check_cacheable
    from vidtl.training.module import VideoClassificationModule

    class Scaled(VideoClassificationModule):
        def forward_clips(self, clips):
            return 2 * super().forward_clips(clips)

    class ScaledBoth(Scaled):
        def forward_features(self, features):
            return 2 * super().forward_features(features)

    def module(cls, **options):
        net = create_backbone("test_efficientnet", pretrained=False)
        return cls(VideoClassifier(net, AvgPool(net.num_features), 8), list("abcdefgh"),
                   finetune=FinetuneSchedule("linear_probe"), **options)

    with pytest.raises(UserError, match="overrides forward_clips.*forward_features too"):
        check_cacheable(module(Scaled))
    check_cacheable(module(ScaledBoth))
    with pytest.raises(UserError, match="no pixels to cut"):
        check_cacheable(module(VideoClassificationModule, cutmix_alpha=1.0))
    check_cacheable(module(VideoClassificationModule, cutmix_alpha=1.0, mixup_alpha=0.2))
    assert isinstance(module(ScaledBoth).classifier, nn.Module)
