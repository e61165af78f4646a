import pytest
import torch

from vidtl.data.clips.batches import ClipBatch
from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.temporal import AvgPool, MaxPool
from vidtl.training.lr_schedules import cosine_with_warmup
from vidtl.training.module import VideoClassificationModule


def test_temporal_pools():
    x = torch.tensor([[[1.0, 5.0], [3.0, -1.0]]])
    assert AvgPool(2)(x).tolist() == [[2.0, 2.0]]
    assert MaxPool(2)(x).tolist() == [[3.0, 5.0]]


@pytest.mark.parametrize("name", ["efficientnet_lite0", "torchvision:resnet18", "resnet18"])
def test_classifier_shapes(name):
    backbone = create_backbone(name, pretrained=False)
    model = VideoClassifier(backbone, AvgPool(backbone.num_features), num_classes=5)
    clips = torch.randn(2, 3, 3, 48, 48)
    assert model(clips).shape == (2, 5)
    assert model.frame_features(clips).shape == (2, 3, backbone.num_features)


def test_classifier_is_order_blind_with_avg_and_folds_correctly():
    backbone = create_backbone("test_efficientnet", pretrained=False).eval()
    model = VideoClassifier(backbone, AvgPool(backbone.num_features), 3).eval()
    clips = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        out = model(clips)
        assert torch.allclose(out, model(clips.flip(1)), atol=1e-5)
        # folding keeps clips apart: clip 0 alone gives clip 0's logits
        assert torch.allclose(model(clips[:1]), out[:1], atol=1e-5)
    with pytest.raises(ValueError, match="expected clips"):
        model(torch.randn(2, 3, 32, 32))


def test_module_normalises_uint8_on_device_and_groups_params():
    backbone = create_backbone("test_efficientnet", pretrained=False)
    classifier = VideoClassifier(backbone, AvgPool(backbone.num_features), 3)
    module = VideoClassificationModule(classifier, ["a", "b", "c"], optimizer=torch.optim.SGD)
    clips = torch.full((1, 2, 3, 8, 8), 255, dtype=torch.uint8)
    out, labels = module.transfer_batch_to_device(ClipBatch(clips, torch.tensor([1])),
                                                  torch.device("cpu"), 0)
    assert out.dtype == torch.float32 and labels.tolist() == [1]
    assert out[0, 0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229)
    names = [g["name"] for g in module.configure_param_groups()]
    assert names == ["backbone", "head"]  # avg pooling has no parameters
    assert "classifier" not in module.hparams and module.hparams["class_names"] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="class names"):
        VideoClassificationModule(classifier, ["a"], optimizer=torch.optim.SGD)


def test_cosine_with_warmup():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = cosine_with_warmup(optimizer, total_steps=20, steps_per_epoch=5, warmup_epochs=1)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    assert rates[5] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[5:], rates[6:]))
    assert rates[-1] < 0.05


def test_metrics_stay_separate_when_first_batches_agree():
    import torch.nn.functional as F

    from vidtl.evaluation.accuracy_metrics import accuracy_metrics

    metrics = accuracy_metrics(6, "val/")
    labels = torch.tensor([0, 1])
    metrics.update(F.one_hot(labels, 6).float(), labels)  # all correct: every metric agrees
    wrong = torch.tensor([[0.1, 0.9, 0.5, 0, 0, 0], [0.9, 0.1, 0.5, 0, 0, 0]])  # in the top 3
    metrics.update(wrong, labels)
    result = {k: v.item() for k, v in metrics.compute().items()}
    assert result["val/top1"] == pytest.approx(0.5)
    assert result["val/top5"] == pytest.approx(1.0)
