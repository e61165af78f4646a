import numpy as np
import pytest
import torch

from vidtl.data.clips.transforms import EvalClipTransform, TrainClipTransform
from vidtl.data.loading.device_stage import DeviceStage


def ramp_clip(frames=4, height=60, width=80):
    """Frames whose red channel encodes the column: left 0, right 255."""
    clip = np.zeros((frames, height, width, 3), dtype=np.uint8)
    clip[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
    clip[..., 1] = np.arange(frames, dtype=np.uint8)[:, None, None] * 40
    return clip


def test_eval_transform_centre_crop_shape_and_determinism():
    transform = EvalClipTransform(crop_size=32, short_side=40)
    clip = ramp_clip()
    out = transform(clip)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    assert torch.equal(out, transform(clip))
    # centre crop: the middle column keeps the middle of the ramp
    assert abs(int(out[0, 0, :, 16].float().mean()) - 128) < 20
    # frames stay in order
    order = out[:, 1].float().mean(dim=(1, 2)).tolist()
    assert order == sorted(order)


@pytest.mark.parametrize("crop", ["multi_scale", "random_resized"])
def test_train_transform_same_crop_for_all_frames(crop):
    transform = TrainClipTransform(crop_size=24, crop=crop, flip=False)
    rng = np.random.default_rng(0)
    clip = ramp_clip()
    for _ in range(10):
        out = transform(clip, rng)
        assert out.shape == (4, 3, 24, 24) and out.dtype == torch.uint8
        red = out[:, 0].float()
        assert torch.allclose(red, red[:1].expand_as(red), atol=1)  # same box in every frame
        assert red[0, :, -1].mean() >= red[0, :, 0].mean()  # no flip: left stays left


def test_train_transform_flip_only_when_allowed():
    rng = np.random.default_rng(0)
    clip = ramp_clip()
    flipped = 0
    for _ in range(40):
        out = TrainClipTransform(crop_size=24, flip=True)(clip, rng)
        flipped += int(out[0, 0, :, 0].float().mean() > out[0, 0, :, -1].float().mean())
    assert 5 < flipped < 35


def test_bad_inputs():
    with pytest.raises(ValueError, match="expected uint8 frames"):
        EvalClipTransform()(np.zeros((4, 10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="crop must be"):
        TrainClipTransform(crop="centre")


def test_the_device_stage_normalises():
    clips = torch.full((2, 3, 3, 4, 4), 255, dtype=torch.uint8)
    out = DeviceStage((0.5, 0.5, 0.5), (0.25, 0.5, 1.0)).normalize(clips)
    assert out.dtype == torch.float32
    assert out[0, 0, :, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])
