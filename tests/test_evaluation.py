"""Multi-view testing, video-level metrics and the test reports."""

from __future__ import annotations

import csv
import json

import lightning as L
import numpy as np
import pytest
import torch
from helpers import compose_config, make_video
from torch import nn
from torch.utils.data import DataLoader

from vidtl.cli.evaluate import evaluate
from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.batches import ViewsItem
from vidtl.data.clips.collate import collate_clips
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.sampling import DenseSampler, SegmentSampler
from vidtl.data.clips.transforms import EvalClipTransform
from vidtl.evaluation.video_results import VideoResults
from vidtl.evaluation.view_scores import aggregate_views, score_views
from vidtl.training.module import VideoClassificationModule

# -- temporal and spatial views ---------------------------------------------------------------


def test_segment_views_spread_over_each_segment():
    sampler = SegmentSampler(4)
    (single,) = sampler.views(40, 1)
    assert np.array_equal(single, sampler(40, False, np.random.default_rng()))
    views = sampler.views(40, 2)  # segments of 10 frames: frames 2 and 7 of each
    assert [v.tolist() for v in views] == [[2, 12, 22, 32], [7, 17, 27, 37]]
    assert all(v.min() >= 0 and v.max() < 3 for v in sampler.views(3, 5))  # short video


def test_dense_views_divide_the_possible_starts():
    sampler = DenseSampler(4, 2)  # span 7
    assert np.array_equal(sampler.views(20, 1)[0], sampler(20, False, np.random.default_rng()))
    starts = [int(v[0]) for v in sampler.views(20, 3)]  # starts 0..13: 14 / 3 apart
    assert starts == [2, 7, 11]
    assert [v.tolist() for v in sampler.views(5, 2)] == [[0, 2, 4, 4], [0, 2, 4, 4]]


def test_three_crops_along_the_long_side():
    frames = np.zeros((2, 20, 60, 3), np.uint8)
    frames[:, :, :20], frames[:, :, 20:40], frames[:, :, 40:] = 50, 150, 250
    transform = EvalClipTransform(crop_size=10, short_side=20)
    left, centre, right = transform.crops(frames, 3)
    assert [int(c.float().mean()) for c in (left, centre, right)] == [50, 150, 250]
    assert left.shape == (2, 3, 10, 10)
    assert torch.equal(transform.crops(frames, 1)[0], transform(frames))
    tall = np.ascontiguousarray(frames.transpose(0, 2, 1, 3))  # 60 high: top, centre, bottom
    assert [int(c.float().mean()) for c in transform.crops(tall, 3)] == [50, 150, 250]
    with pytest.raises(ValueError, match="1 or 3"):
        transform.crops(frames, 2)


def test_multi_view_items_and_replaced_broken_videos(tmp_path):
    good = make_video(tmp_path / "good.avi", num_frames=30)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"no video")
    data = VideoClipDataset([VideoRecord(broken, 0), VideoRecord(good, 1)], SegmentSampler(4),
                            EvalClipTransform(16, 16), training=False, views=(2, 3))
    views, label, video = data[0]
    assert views.shape == (6, 4, 3, 16, 16) and views.dtype == torch.uint8
    assert (label, video) == (1, 1)  # the replacement says which video it is
    assert not torch.equal(views[0], views[3])  # two temporal clips
    single = VideoClipDataset([VideoRecord(good, 1)], SegmentSampler(4), EvalClipTransform(16, 16),
                              training=False, views=(1, 1))
    plain = VideoClipDataset([VideoRecord(good, 1)], SegmentSampler(4), EvalClipTransform(16, 16),
                             training=False)
    assert torch.equal(single[0][0][0], plain[0][0])


# -- aggregation and metrics ------------------------------------------------------------------


def test_aggregate_views_exact_scores():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                           [[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]]])
    expected = np.stack([
        (np.exp([2, 0, 0]) / np.exp([2, 0, 0]).sum() + np.exp([0, 1, 0]) / np.exp([0, 1, 0]).sum())
        / 2,
        np.exp([0, 0, 3]) / np.exp([0, 0, 3]).sum(),
    ])
    assert np.allclose(aggregate_views(logits).numpy(), expected, atol=1e-7)
    assert torch.equal(aggregate_views(logits, "logits"), torch.tensor([[1.0, 0.5, 0.0],
                                                                        [0.0, 0.0, 3.0]]))
    expected_max = np.exp(logits.numpy() - logits.numpy().max(-1, keepdims=True))
    expected_max = (expected_max / expected_max.sum(-1, keepdims=True)).max(1)
    assert np.allclose(aggregate_views(logits, "max").numpy(), expected_max, atol=1e-7)
    with pytest.raises(ValueError, match="softmax"):
        aggregate_views(logits, "median")


def test_score_views_in_chunks():
    views = torch.arange(2 * 5, dtype=torch.float32).view(2, 5, 1, 1, 1, 1)
    sizes = []

    def score(clips):
        sizes.append(len(clips))
        return torch.cat([clips.view(-1, 1), -clips.view(-1, 1)], 1)

    logits = score_views(views, score, chunk=3)
    assert sizes == [3, 3, 3, 1] and logits.shape == (2, 5, 2)
    assert torch.equal(logits[1, 4], torch.tensor([9.0, -9.0]))


def test_video_results_count_each_video_once():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.9, 0.1, 0.0]])
    # video 0 appears twice (sampler padding); videos 1 and 2 are class 1, predicted 1 and 0
    results = VideoResults.from_batches([torch.tensor([0, 1]), torch.tensor([2, 0])],
                                        [torch.tensor([0, 1]), torch.tensor([1, 0])],
                                        [scores[:2], scores[2:]])
    assert results.videos.tolist() == [0, 1, 2] and len(results) == 3
    counts = results.confusion_matrix(3)
    assert counts.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert counts.sum() == len(results)
    per_class = results.per_class_accuracy(3)
    assert per_class[:2].tolist() == [1.0, 0.5] and np.isnan(per_class[2])
    metrics = results.metrics(3)
    assert metrics == pytest.approx({"top1": 2 / 3, "top5": 1.0, "mean_class_acc": 0.75})
    assert results.topk_correct(2).tolist() == [True, True, True]


class ViewLogits(nn.Module):
    """A stub classifier: the logits of a clip are a fixed table row picked by its pixel value
    (each view of the test data is filled with its view number)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.num_classes = table.shape[1]
        self.anchor = nn.Parameter(torch.zeros(()))
        config = type("Config", (), {"mean": (0.0,) * 3, "std": (1.0 / 255,) * 3})
        self.backbone = type("Backbone", (), {"data_config": config})()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        view = clips[:, 0, 0, 0, 0].round().long()  # normalised back to the raw pixel value
        return self.table[view] + 0 * self.anchor


def test_module_averages_the_views_of_each_video_exactly():
    table = torch.tensor([[4.0, 0.0], [0.0, 1.0], [1.0, 0.5]])  # the logits of views 0, 1, 2
    module = VideoClassificationModule(ViewLogits(table), ["a", "b"], view_chunk=2)
    views = torch.arange(3, dtype=torch.uint8).view(1, 3, 1, 1, 1, 1).expand(4, 3, 2, 3, 4, 4)
    labels, videos = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 2, 0])  # 0 padded in
    items = [ViewsItem(*item) for item in zip(views.clone(), labels, videos, strict=True)]
    loader = DataLoader(items, batch_size=2, collate_fn=collate_clips)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    metrics = trainer.test(module, loader)[0]
    expected = table.softmax(-1).mean(0)
    results = module.test_results
    assert results.videos.tolist() == [0, 1, 2]
    assert np.allclose(results.scores, expected.expand(3, 2).numpy(), atol=1e-6)
    assert metrics["test/top1"] == pytest.approx(1 / 3)  # every video predicted "a"
    assert metrics["test/clip_top1"] == pytest.approx(6 / 12)  # views 0 and 2 say "a", 1 "b"


# -- the entry points -------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def test_eval_multi_view_writes_predictions_and_confusion_matrix(checkpoint, tmp_path):
    metrics = evaluate(compose_config("eval", [
        f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path}", "subsets=[test]",
        "data.num_workers=0", "data.num_test_clips=2", "data.num_test_crops=3",
        "trainer.accelerator=cpu", "trainer.limit_test_batches=null", "logger=none",
        "view_chunk=5"]))
    assert {"test/top1", "test/top5", "test/mean_class_acc", "test/clip_top1"} <= set(metrics)
    with open(tmp_path / "predictions.csv") as file:
        rows = list(csv.DictReader(file))
    videos = [row["video"] for row in rows]
    assert len(videos) == len(set(videos)) == 16  # every test video of the tiny set, once
    assert {"label", "predicted", "top5", "score5"} <= set(rows[0])
    assert sum(int(r["correct"]) for r in rows) / len(rows) == pytest.approx(metrics["test/top1"])
    with open(tmp_path / "confusion_matrix.csv") as file:
        matrix = list(csv.reader(file))
    names = matrix[0][1:]
    counts = {(row[0], names[j]): int(v) for row in matrix[1:] for j, v in enumerate(row[1:])}
    for true in names:
        for predicted in names:
            expected = sum(r["label"] == true and r["predicted"] == predicted for r in rows)
            assert counts[true, predicted] == expected
    with open(tmp_path / "per_class.csv") as file:
        per_class = list(csv.DictReader(file))
    assert sum(int(r["videos"]) for r in per_class) == 16
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test/top1"] == pytest.approx(metrics["test/top1"])


def test_eval_logs_the_confusion_matrix_and_per_class_table_to_wandb(checkpoint, tmp_path,
                                                                   monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    evaluate(compose_config("eval", [
        f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path}", "subsets=[test]",
        "data.num_workers=0", "trainer.accelerator=cpu", "logger=wandb"]))
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    (image,) = (media / "images" / "test").glob("confusion_matrix_*.png")
    assert image.read_bytes()[:4] == b"\x89PNG"
    (table,) = (media / "table" / "test").glob("per_class_*.table.json")
    content = json.loads(table.read_text())
    assert content["columns"] == ["class", "videos", "correct", "accuracy"]
    assert len(content["data"]) == 8 and sum(row[1] for row in content["data"]) == 16


@pytest.mark.slow
def test_ddp_evaluation_counts_every_video_once(checkpoint, tiny_dataset, tmp_path):
    """Two CPU processes (gloo) on 15 test videos: the distributed sampler pads one repeat."""
    import subprocess
    import sys

    from vidtl.data.annotations.index import load_index

    test_videos = [str(r.path) for r in load_index("ucf101", tiny_dataset).subsets["test"]]
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(test_videos[0] + "\n")
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.evaluate", f"ckpt_path={checkpoint}",
         f"paths.output_dir={out}", "subsets=[test]", f"data.exclude_list={exclude}",
         "data.num_workers=0", "data.batch_size=3", "data.num_test_clips=2", "trainer=ddp",
         "trainer.accelerator=cpu", "trainer.devices=2", "logger=none"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr  # really two ranks
    with open(out / "predictions.csv") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["video"] for row in rows) == sorted(test_videos[1:])  # 15, each once
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test/top1"] == pytest.approx(sum(int(r["correct"]) for r in rows) / 15)


@pytest.mark.parametrize("aggregation,chunk,message", [
    ("bogus", 32, "view_aggregation must be one of"), ("softmax", 0, "view_chunk must be"),
    ("softmax", 1.5, "view_chunk must be"), ("softmax", True, "view_chunk must be"),
    ("softmax", None, "view_chunk must be")])
def test_view_scoring_settings_are_checked_by_name(aggregation, chunk, message):
    from vidtl.core.errors import UserError
    from vidtl.evaluation.view_scores import check_view_scoring

    with pytest.raises(UserError, match=message):
        check_view_scoring(aggregation, chunk)
    check_view_scoring("logits", 4)
