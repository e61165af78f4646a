"""Every temporal module: shapes and gradients with two backbone families; order sensitivity."""

import pytest
import torch

from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.temporal import AttentionPool, AvgPool, MaxPool, RecurrentPool, TransformerEncoder
from vidtl.models.tsm import TemporalShiftConsensus

T = 4
MODULES = {
    "avg": lambda d: AvgPool(d),
    "max": lambda d: MaxPool(d),
    "attention": lambda d: AttentionPool(d, T, hidden=16),
    "transformer": lambda d: TransformerEncoder(d, T, dim=32, depth=1, heads=2, dropout=0.0),
    "transformer_mean": lambda d: TransformerEncoder(d, T, dim=32, depth=1, heads=2,
                                                     pooling="mean"),
    "lstm": lambda d: RecurrentPool(d, T, hidden=16),
    "gru_bidirectional": lambda d: RecurrentPool(d, T, hidden=16, cell="gru", bidirectional=True),
    "tsm": lambda d: TemporalShiftConsensus(d, T),
}
ORDER_AWARE = {"transformer", "transformer_mean", "lstm", "gru_bidirectional", "tsm"}


# (timm ResNets zero-initialise the last BatchNorm of each block, which would hide the shift
# from a randomly initialised network: torchvision's ResNet does not.)
@pytest.mark.parametrize("backbone_name", ["torchvision:resnet18", "efficientnet_lite0"])
@pytest.mark.parametrize("name", sorted(MODULES))
def test_shapes_gradients_and_order(name, backbone_name):
    torch.manual_seed(0)
    backbone = create_backbone(backbone_name, pretrained=False)
    temporal = MODULES[name](backbone.num_features)
    model = VideoClassifier(backbone, temporal, num_classes=3, dropout=0.0)
    clips = torch.randn(2, T, 3, 32, 32)
    logits = model(clips)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused  # DDP needs every trainable parameter to get a gradient
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        features = model.clip_features(clips)
        change = (model.clip_features(clips.flip(1)) - features).norm() / features.norm()
    same = change < 1e-5
    assert same == (name not in ORDER_AWARE)


def test_transformer_refuses_longer_clips():
    module = TransformerEncoder(8, num_frames=4, dim=8, depth=1, heads=2)
    with pytest.raises(ValueError, match="at most 4"):
        module(torch.randn(1, 5, 8))


def test_bad_options():
    with pytest.raises(ValueError, match="pooling"):
        TransformerEncoder(8, 4, pooling="max")
    with pytest.raises(ValueError, match="cell"):
        RecurrentPool(8, 4, cell="rnn")
