"""Class-balanced sampling and class-weighted cross-entropy for imbalanced data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import make_datamodule

from vidtl.core.errors import UserError
from vidtl.data.loading.resumable import EpochBalancedSampler
from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.temporal import AvgPool
from vidtl.training.class_weights import balanced_class_weights, class_weights
from vidtl.training.module import VideoClassificationModule


def test_balanced_sampling_sees_a_rare_class_as_often_as_a_common_one():
    labels = [0] * 90 + [1] * 10
    sampler = EpochBalancedSampler(labels, seed=5)
    drawn = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn += [labels[i] for i in sampler]
    share = sum(drawn) / len(drawn)
    assert len(drawn) == 2000 and 0.45 < share < 0.55  # 0.10 without balancing
    sampler.set_epoch(3)
    again = EpochBalancedSampler(labels, seed=5)
    again.set_epoch(3)
    assert list(sampler) == list(again)  # seeded per epoch (resumable)


def test_balanced_class_weights_and_weighted_loss(tiny_dataset):
    datamodule = make_datamodule(tiny_dataset, num_workers=0, num_frames=2, crop_size=32)
    labels = [r.label for r in datamodule.dataset("train").records]
    weights = class_weights("balanced", lambda: labels, 8)
    assert weights is not None and len(weights) == 8
    assert abs(sum(weights) / 8 - 1) < 1e-6  # balanced tiny set: all 1
    assert class_weights(None, lambda: labels, 8) is None
    backbone = create_backbone("test_efficientnet", pretrained=False)
    classifier = VideoClassifier(backbone, AvgPool(backbone.num_features), 3)
    module = VideoClassificationModule(classifier, ["a", "b", "c"],
                                       class_weights=[0.5, 1.0, 2.0])
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([0.5, 1.0, 2.0]))
    assert torch.allclose(module.compute_loss(logits, labels), expected)
    assert not torch.allclose(module.compute_loss(logits, labels),
                              F.cross_entropy(logits, labels))


def test_balanced_weights_are_inverse_frequency_with_mean_one():
    weights = balanced_class_weights([0, 0, 0, 1], 3)
    assert weights == pytest.approx([4 / 9, 4 / 3, 0.0])  # a class without videos: 0
    assert class_weights(None, lambda: pytest.fail("labels read"), 3) is None
    with pytest.raises(UserError, match="null or balanced, got 'inverse'"):
        class_weights("inverse", lambda: [0], 3)


def test_eval_reports_the_loss_the_run_trained_with(tiny_dataset, tmp_path):
    """A run with balanced class weights: vidtl-eval's test/loss is training's (the weights
    travel in the checkpoint), not the unweighted cross-entropy, and does not depend on the
    batch size (the weighted mean of the whole split)."""
    from helpers import compose_config, tiny_train_overrides

    from vidtl.cli.evaluate import evaluate
    from vidtl.cli.train import train

    exclude = tmp_path / "rare.txt"  # MoveRight keeps 1 of its 4 training videos
    exclude.write_text("".join(f"MoveRight/v_MoveRight_g0{g}_c0{c}.avi\n"
                               for g, c in ((2, 2), (3, 1), (3, 2))))
    run = tmp_path / "run"
    trained = train(compose_config("train", tiny_train_overrides(
        run, tiny_dataset, "logger=none", "module.class_weights=balanced",
        f"data.exclude_list={exclude}", "trainer.limit_test_batches=null")))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    weights = checkpoint["vidtl"]["class_weights"]
    assert len(weights) == 8 and max(weights) > 2 * min(weights)
    evaluated = evaluate(compose_config("eval", [
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"paths.output_dir={tmp_path / 'ev'}",
        "subsets=[test]", "data.num_workers=0", "trainer.accelerator=cpu", "logger=none",
        "trainer.limit_test_batches=null", "data.batch_size=3"]))  # training's: 4
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-5)
    from vidtl.inference.checkpoint_model import CheckpointMismatchError, load_trained_model
    for crafted in ([1.0] * 7, ["x"] * 8, [float("nan")] * 8, [-1.0] * 8, {"a": 1}, [0.0] * 8,
                    [1e39] * 8, [10**400] * 8, [True] * 8, [1e-300] * 8):
        checkpoint["vidtl"]["class_weights"] = crafted
        torch.save(checkpoint, tmp_path / "crafted.ckpt")
        with pytest.raises(CheckpointMismatchError, match="class_weights must be 8 finite"):
            load_trained_model(tmp_path / "crafted.ckpt")
