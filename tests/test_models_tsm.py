import pytest
import torch

from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.tsm import TemporalShift, TemporalShiftConsensus, temporal_shift


def test_temporal_shift_moves_one_eighth_each_way():
    x = torch.arange(2 * 3 * 8, dtype=torch.float).view(2 * 3, 8, 1, 1)  # B=2, T=3, C=8
    out = temporal_shift(x, num_frames=3, fold_div=8).view(2, 3, 8)
    clips = x.view(2, 3, 8)
    assert torch.equal(out[:, :2, 0], clips[:, 1:, 0]) and (out[:, 2, 0] == 0).all()
    assert torch.equal(out[:, 1:, 1], clips[:, :2, 1]) and (out[:, 0, 1] == 0).all()
    assert torch.equal(out[:, :, 2:], clips[:, :, 2:])
    assert torch.equal(temporal_shift(x, num_frames=1), x)


@pytest.mark.parametrize("name,placement", [
    ("torchvision:resnet18", "residual"), ("torchvision:resnet18", "inplace"),
    ("efficientnet_lite0", "residual"), ("efficientnet_lite0", "inplace"),
    ("torchvision:mobilenet_v2", "residual"), ("torchvision:efficientnet_b0", "residual"),
])
def test_tsm_keeps_pretrained_outputs_for_single_frames_and_changes_them_for_clips(name, placement):
    torch.manual_seed(0)
    plain = create_backbone(name, pretrained=False).eval()
    shifted = create_backbone(name, pretrained=False).eval()
    shifted.load_state_dict(plain.state_dict())
    before = set(shifted.state_dict())
    temporal = TemporalShiftConsensus(plain.num_features, 4, placement=placement)
    model = VideoClassifier(shifted, temporal, num_classes=2).eval()
    assert set(shifted.state_dict()) == before  # no new parameters or buffers
    assert temporal.shift.num_blocks > 0
    one_frame = create_backbone(name, pretrained=False).eval()
    one_frame.load_state_dict(plain.state_dict())
    single_model = VideoClassifier(
        one_frame, TemporalShiftConsensus(plain.num_features, 1, placement=placement), 2).eval()
    frames = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        reference = plain(frames.flatten(0, 1)).view(2, 4, -1)
        single = torch.cat([single_model.frame_features(frames[:, t : t + 1])
                            for t in range(4)], 1)
        assert torch.allclose(single, reference, atol=1e-5)  # T = 1: nothing to shift
        shifted_features = model.frame_features(frames)
        change = (shifted_features - reference).norm() / reference.norm()
        assert change > 1e-3  # frames differ: the shift mixes them
        temporal.shift.enabled = False
        assert torch.allclose(model.frame_features(frames), reference, atol=1e-5)


def test_unsupported_backbone_names_the_supported_families():
    backbone = create_backbone("torchvision:vgg11", pretrained=False)
    with pytest.raises(ValueError, match="supported families.*ResNet"):
        TemporalShift(backbone, num_frames=4)


def test_the_clip_length_reaches_the_shift_by_its_constructor_only():
    backbone = create_backbone("torchvision:resnet18", pretrained=False).eval()
    model = VideoClassifier(backbone, TemporalShiftConsensus(backbone.num_features, 4), 2).eval()
    assert model.clip_length == 4 and not hasattr(backbone, "frames_per_clip")
    with torch.no_grad(), pytest.raises(ValueError, match="clips of 4 frames .* got 3"):
        model(torch.randn(2, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="batch of 6 frames, not a multiple of 4"):
        temporal_shift(torch.randn(6, 8, 2, 2), num_frames=4)
