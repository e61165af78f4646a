"""The parts of multi-label training one at a time: labels over spans, the BCE loss and its
options, batch mixing of multi-hot targets, operating points (chosen, saved, missing from an
older checkpoint), view aggregation, timeline segments per class, and hostile descriptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidtl.core.errors import UserError
from vidtl.data.annotations.records import NO_LABEL, TimedLabel, VideoRecord
from vidtl.data.clips.batches import ClipBatch
from vidtl.evaluation.view_scores import aggregate_views
from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.temporal import AvgPool
from vidtl.timeline.segments import ThresholdSegmentBuilder
from vidtl.training.batch_mixing import BatchMixing
from vidtl.training.class_weights import balanced_multilabel_weights, balanced_pos_weight
from vidtl.training.module import VideoClassificationModule
from vidtl.training.operating_points import OperatingPoints, detected_classes


def tiny_module(num_classes: int = 3, **options) -> VideoClassificationModule:
    backbone = create_backbone("test_efficientnet", pretrained=False)
    classifier = VideoClassifier(backbone, AvgPool(backbone.num_features), num_classes)
    return VideoClassificationModule(classifier, [f"c{i}" for i in range(num_classes)],
                                     **options)


def test_labels_between_follow_the_action_spans():
    record = VideoRecord(Path("v.mp4"), 0, actions=(TimedLabel(0, 0.0, 1.0),
                                                    TimedLabel(2, 3.0, 4.0), TimedLabel(1)))
    assert record.labels() == [0, 1, 2]
    assert record.labels_between(0.5, 0.6) == [0, 1]
    assert record.labels_between(1.5, 2.5) == [1]
    assert record.labels_between(0.9, 3.1) == [0, 1, 2]
    empty = VideoRecord(Path("w.mp4"), NO_LABEL)
    assert empty.multilabel and empty.labels() == []
    assert VideoRecord(Path("x.mp4"), 4).labels_between(0, 9) == [4]


def test_multilabel_loss_is_bce_with_its_options():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -3.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    plain = tiny_module(task="multilabel")
    assert plain.compute_loss(logits, targets) == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, targets).item())
    weighted = tiny_module(task="multilabel", pos_weight=[1.0, 2.0, 3.0],
                           class_weights=[0.5, 1.0, 1.5], label_smoothing=0.2)
    smoothed = targets * 0.8 + 0.1
    expected = F.binary_cross_entropy_with_logits(
        logits, smoothed, weight=torch.tensor([0.5, 1.0, 1.5]),
        pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    assert weighted.compute_loss(logits, targets) == pytest.approx(expected.item())
    # class indices one-hot (a multi-label run on single-label rows)
    assert plain.compute_loss(logits, torch.tensor([0, 1])) == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, F.one_hot(torch.tensor([0, 1]), 3).float())
        .item())


def test_balanced_weights_of_multilabel_sets():
    sets = [[0, 1], [0], [0], [2], []]
    assert balanced_pos_weight(sets, 4) == pytest.approx([2 / 3, 4.0, 4.0, 1.0])
    weights = balanced_multilabel_weights(sets, 4)
    assert weights[3] == 0 and np.mean(weights[:3]) == pytest.approx(1.0)
    assert weights[1] == pytest.approx(3 * weights[0])


def test_mixup_mixes_multi_hot_rows():
    clips = torch.rand(4, 2, 3, 8, 8)
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]])
    mixed, targets = BatchMixing(mixup_alpha=0.4)(ClipBatch(clips, labels), 3,
                                                  np.random.default_rng(0))
    rng = np.random.default_rng(0)
    order = torch.from_numpy(rng.permutation(4))
    weight = float(rng.beta(0.4, 0.4))
    assert torch.allclose(targets, weight * labels + (1 - weight) * labels[order])
    assert torch.allclose(mixed.clips, weight * clips + (1 - weight) * clips[order])


def test_operating_points_are_chosen_saved_and_missing_ones_keep_defaults():
    points = OperatingPoints(3, multilabel=True, rule="f1", fixed=0.4)
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.2, 0.6, 0.1]], np.float32)
    targets = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    points.choose(scores, targets)
    assert points.thresholds.tolist() == pytest.approx([0.8, 0.6, 0.4])  # class 2: no positive
    found = detected_classes(points, torch.tensor([0.85, 0.65, 0.9]))
    assert found == [(2, 0.9), (0, 0.85), (1, 0.65)]
    fresh = OperatingPoints(3, multilabel=True)
    fresh.load_state_dict(points.state_dict())
    assert torch.equal(fresh.thresholds, points.thresholds)
    old = tiny_module(task="multilabel")
    state = {k: v for k, v in old.state_dict().items() if "operating_points" not in k}
    old.load_state_dict(state)  # a checkpoint of vidtl 0.5.0: thresholds keep their default
    assert old.operating_points.thresholds.tolist() == [0.5, 0.5, 0.5]


def test_a_detector_has_one_threshold_for_its_positive_class():
    module = tiny_module(2)
    assert module.operating_points.positive == 1  # a 2-class task: the second class
    named = tiny_module(4, positive_class="c2")
    assert named.operating_points.positive == 2
    assert tiny_module(4).operating_points is None
    with pytest.raises(UserError, match="positive_class='c9'"):
        tiny_module(4, positive_class="c9")
    points = named.operating_points
    probabilities = torch.tensor([[0.1, 0.2, 0.6, 0.1], [0.5, 0.1, 0.3, 0.1]])
    scores, targets = points.video_inputs(probabilities, torch.tensor([2, 0]))
    assert scores[:, 0].tolist() == pytest.approx([0.6, 0.3]) and targets[:, 0].tolist() == [1, 0]


def test_view_aggregation_of_multilabel_scores():
    logits = torch.tensor([[[2.0, -2.0], [0.0, 1.0]]])
    assert torch.allclose(aggregate_views(logits, "softmax", True),
                          logits.sigmoid().mean(1))
    assert torch.allclose(aggregate_views(logits, "max", True), logits.sigmoid().amax(1))
    assert torch.allclose(aggregate_views(logits, "logits", True), logits.mean(1).sigmoid())
    assert torch.allclose(aggregate_views(logits, "max"), logits.softmax(-1).amax(1))


def test_multilabel_segments_overlap_and_drop_blips():
    builder = ThresholdSegmentBuilder(1.0, 2.0, torch.tensor([0.5, 0.5]))
    rows = [[0.9, 0.1], [0.9, 0.8], [0.9, 0.9], [0.2, 0.9], [0.2, 0.1], [0.7, 0.1]]
    segments = []
    for i, row in enumerate(rows):
        segments += builder.add(float(i), float(i) + 2, torch.tensor(row))
    segments += builder.finish()
    spans = sorted((s.label, s.start_s, s.end_s) for s in segments)
    # class 0 from 0 to 3.5 s; class 1 from 1.5 to 4.5 s (overlapping); class 0's last window
    # (1 s) is a blip under min_segment_s
    assert spans == [(0, 0.0, 3.5), (1, 1.5, 4.5)]


def test_onnx_descriptions_with_bad_thresholds_are_refused(tmp_path):
    from vidtl.inference.onnx_model import ExportedModelError, described_thresholds

    names = ["a", "b"]
    assert described_thresholds({}, names, tmp_path / "m.onnx") is None
    good = described_thresholds({"task": "multilabel", "thresholds": {"a": 0.2, "b": 1}},
                                names, tmp_path / "m.onnx")
    assert good.tolist() == pytest.approx([0.2, 1.0])
    for contradiction in ({"thresholds": {"a": 0.1, "b": 0.1}},
                          {"task": "single_label", "thresholds": {"a": 0.1, "b": 0.1}},
                          {"task": "multilabel", "thresholds": {"a": 0.1, "b": 0.1},
                           "positive_class": "a", "threshold": 0.5}):
        with pytest.raises(ExportedModelError, match="belong"):
            described_thresholds(contradiction, names, tmp_path / "m.onnx")
    detector = described_thresholds({"positive_class": "b", "threshold": 0.3}, names,
                                    tmp_path / "m.onnx")
    assert detector.tolist() == [float("inf"), pytest.approx(0.3)]
    for bad in ({"positive_class": "c", "threshold": 0.3}, {"positive_class": "a"},
                {"positive_class": "a", "threshold": float("nan")},
                {"task": "multilabel", "thresholds": {"a": 0.2}},
                {"task": "multilabel", "thresholds": {"a": float("nan"), "b": 0.1}},
                {"task": "multilabel", "thresholds": {"a": True, "b": 0.1}},
                {"task": "regression"}):
        with pytest.raises(ExportedModelError, match="threshold|task"):
            described_thresholds(bad, names, tmp_path / "m.onnx")


def test_a_checkpoint_with_thresholds_that_are_not_probabilities_is_refused():
    module = tiny_module(task="multilabel")
    for bad in (torch.tensor([0.5, float("nan"), 0.5]), torch.tensor([0.5, 2.0, 0.5]),
                torch.tensor([5, 5, 5]), torch.tensor([0, 0, 0]), torch.tensor([True] * 3),
                torch.tensor([0.5 + 1j] * 3)):
        state = module.state_dict() | {"operating_points.thresholds": bad}
        with pytest.raises(RuntimeError, match="must hold floating-point probabilities"):
            module.load_state_dict(state)
    state = module.state_dict() | {"operating_points.thresholds": torch.zeros(5)}
    with pytest.raises(RuntimeError, match="size mismatch"):
        module.load_state_dict(state)


def test_init_from_another_run_leaves_its_thresholds_and_positive_weights_behind():
    from vidtl.inference.transfer import transfer_weights

    source = tiny_module(task="multilabel", pos_weight=[2.0, 3.0, 4.0])
    source.operating_points.thresholds.fill_(0.9)
    target = tiny_module(task="multilabel", pos_weight=[1.0, 1.0, 1.0])
    report = transfer_weights(target, source.state_dict())
    assert target.operating_points.thresholds.tolist() == [0.5, 0.5, 0.5]
    assert target.pos_weight.tolist() == [1.0, 1.0, 1.0]
    assert "of the other run's classes" in report.dropped["operating_points.thresholds"]
    assert report.loaded["backbone"] > 0


def test_a_detectors_threshold_for_another_positive_class_is_not_reused():
    fight = tiny_module(4, positive_class="c1")
    fight.operating_points.thresholds.fill_(0.8)
    calm = tiny_module(4, positive_class="c2")
    calm.load_state_dict(fight.state_dict())  # e.g. vidtl-eval eval.positive_class=c2
    assert calm.operating_points.thresholds.tolist() == [0.5]
    same = tiny_module(4, positive_class="c1")
    same.load_state_dict(fight.state_dict())
    assert same.operating_points.thresholds.tolist() == pytest.approx([0.8])


def test_class_names_with_control_characters_are_refused_before_training(tmp_path):
    from vidtl.data.annotations.formats import DatasetLayoutError
    from vidtl.data.annotations.index import load_index

    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "train.csv").write_text('a.mp4,"bird;c\x1bat"\n')
    with pytest.raises(DatasetLayoutError, match="control characters"):
        load_index("csv", tmp_path, train_list="train.csv", val_list="train.csv")
