"""Mixup and CutMix: mixed clips with soft targets in the same proportion, a subclass hook,
soft targets in the loss, and evaluation reporting training's loss definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import compose_config, tiny_train_overrides

from vidtl.assembly.config_upgrade import upgrade_config
from vidtl.core.errors import UserError
from vidtl.data.clips.batches import ClipBatch, FeatureBatch
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.training.batch_mixing import BatchMixing


def clips_and_labels():
    clips = torch.stack([torch.full((4, 3, 16, 20), float(i)) for i in range(6)])
    return ClipBatch(clips, torch.tensor([0, 1, 2, 3, 4, 5]))


def test_mixup_blends_clips_and_labels_in_the_same_proportion():
    batch = clips_and_labels()
    mixed, targets = BatchMixing(mixup_alpha=0.4)(batch, 6, np.random.default_rng(0))
    assert isinstance(mixed, ClipBatch) and torch.equal(mixed.labels, batch.labels)
    mixed = mixed.clips
    draws = np.random.default_rng(0)  # the same draws: the partners, then the weight
    partners, weight = draws.permutation(6), draws.beta(0.4, 0.4)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    for i, partner in enumerate(partners):
        assert mixed[i, 0, 0, 0, 0].item() == pytest.approx(weight * i + (1 - weight) * partner,
                                                            abs=1e-5)
        expected = weight * F.one_hot(torch.tensor(i), 6) + (1 - weight) * F.one_hot(
            torch.tensor(int(partner)), 6)
        assert torch.allclose(targets[i], expected.float(), atol=1e-6)


def test_cutmix_pastes_one_box_in_every_frame_and_weights_by_area():
    clips, labels = batch = clips_and_labels()
    mixed, targets = BatchMixing(cutmix_alpha=1.0)(batch, 6, np.random.default_rng(3))
    mixed = mixed.clips
    for i in range(6):
        pasted = mixed[i] != i
        assert torch.equal(pasted, pasted[:1].expand_as(pasted))  # the same box in every frame
        kept = 1 - pasted[0, 0].float().mean().item()
        assert targets[i, i].item() == pytest.approx(kept, abs=1e-6) or torch.equal(
            mixed[i], clips[i])  # a clip paired with itself keeps everything


def test_both_choose_per_batch_and_bad_values_are_user_errors():
    batch = clips_and_labels()
    mixing = BatchMixing(mixup_alpha=0.4, cutmix_alpha=1.0, cutmix_probability=1.0)
    mixed, _ = mixing(batch, 6, np.random.default_rng(1))
    assert set(mixed.clips.unique().tolist()) <= set(range(6))  # CutMix: copied, not blended
    with pytest.raises(UserError, match="mixup_alpha"):
        BatchMixing(mixup_alpha=-1)
    features = FeatureBatch(torch.zeros(4, 3, 8), batch.labels[:4])
    with pytest.raises(UserError, match="cached"):
        BatchMixing(cutmix_alpha=1.0)(features, 6, np.random.default_rng(0))


def test_cached_features_with_both_are_mixed_up_and_said_so(caplog):
    """Cached features have no pixels to cut: with Mixup and CutMix both on, every batch is
    blended (Mixup) and the run says so once, where it used to switch silently."""
    features = FeatureBatch(torch.stack([torch.full((3, 8), float(i)) for i in range(6)]),
                            torch.arange(6))
    mixing = BatchMixing(mixup_alpha=0.4, cutmix_alpha=1.0, cutmix_probability=1.0)
    with caplog.at_level("WARNING", logger="vidtl.training.batch_mixing"):
        for seed in range(3):
            mixed, targets = mixing(features, 6, np.random.default_rng(seed))
            assert isinstance(mixed, FeatureBatch)
            assert not set(mixed.features.unique().tolist()) <= set(range(6))  # blended
    assert sum("Mixup" in r.getMessage() for r in caplog.records) == 1


def test_the_loss_takes_soft_targets_with_smoothing_and_weights():
    from test_finetune import build

    from vidtl.finetune.schedule import FinetuneSchedule

    module = build(FinetuneSchedule("full"))
    module.label_smoothing = 0.1
    logits, labels = torch.randn(5, 8), torch.tensor([0, 3, 7, 1, 1])
    soft = F.one_hot(labels, 8).float()
    assert torch.allclose(module.compute_loss(logits, soft), module.compute_loss(logits, labels))


def test_training_with_mixing_and_evaluation_with_the_same_loss(tiny_dataset, tmp_path):
    from vidtl.cli.train import train

    cfg = compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "module.mixup_alpha=0.8", "module.cutmix_alpha=1.0",
        "module.label_smoothing=0.2", "test=false", "logger=none"))
    metrics = train(cfg)
    assert np.isfinite(metrics["val/loss"])
    model = load_trained_model(tmp_path / "checkpoints" / "last.ckpt")
    assert model.module.label_smoothing == 0.2
    # rebuilt as trained (mix_batch runs in training_step only; val/loss is unmixed)
    assert model.module.batch_mixing.mixup_alpha == 0.8


def test_label_smoothing_of_an_older_checkpoint_moves_to_module():
    old = {"model": {"label_smoothing": 0.1, "dropout": 0.5}, "module": {"class_weights": None}}
    assert upgrade_config(old) == {"model": {"dropout": 0.5},
                                   "module": {"class_weights": None, "label_smoothing": 0.1}}


def test_a_mix_batch_of_0_4_is_named_when_the_module_is_built():
    from vidtl.models.backbones import create_backbone
    from vidtl.models.classifier import VideoClassifier
    from vidtl.models.temporal import AvgPool
    from vidtl.training.module import VideoClassificationModule

    class OldMixing(VideoClassificationModule):
        def mix_batch(self, clips, labels):
            return clips, labels

    net = create_backbone("test_efficientnet", pretrained=False)
    classifier = VideoClassifier(net, AvgPool(net.num_features), 2)
    with pytest.raises(TypeError, match=r"mix_batch takes \(batch\) since vidtl 0.5"):
        OldMixing(classifier, ["a", "b"])
    VideoClassificationModule(classifier, ["a", "b"])
