"""Temporal adaptation inside the backbone: ST-Adapter, AIM, token shift, EVL decoder, LoRA.

ViT paths use a randomly initialised timm ViT-Tiny (32 px: four patches and a class token);
CNN paths a random EfficientNet-Lite0 and ResNet-18.
"""

from __future__ import annotations

import pytest
import torch

from vidtl.finetune.schedule import FinetuneSchedule
from vidtl.models.adaptable_blocks import (
    CNN_BLOCKS,
    UnsupportedBackboneError,
    backbone_family,
    cnn_block_types,
)
from vidtl.models.aim import AIM
from vidtl.models.backbones import Backbone, ImageDataConfig, create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.evl import EVLDecoder
from vidtl.models.lora import LoraSettings, apply_lora, merge_lora, vit_projection_owners
from vidtl.models.st_adapter import STAdapter
from vidtl.models.temporal import AvgPool
from vidtl.models.token_shift import TokenShift
from vidtl.models.tsm import temporal_shift

FRAMES = 4
ZERO_INIT = {"st_adapter": STAdapter, "aim": AIM, "evl": EVLDecoder}


def vit_tiny():
    # ViT-Tiny's width and heads; 4 of its 12 blocks keep the tests fast.
    return create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=4)


def cnn(name: str):
    return create_backbone(name, pretrained=False)


def twin_models(make_backbone, temporal_cls, lora: bool = False):
    """An image model (average pooling) and an adapted model with the same backbone weights."""
    torch.manual_seed(0)
    plain = make_backbone()
    adapted = make_backbone()
    adapted.load_state_dict(plain.state_dict())
    if lora:
        apply_lora(adapted, LoraSettings(rank=4))
    image_model = VideoClassifier(plain, AvgPool(plain.num_features), 6).eval()
    video_model = VideoClassifier(adapted, temporal_cls(adapted.num_features, FRAMES), 6).eval()
    video_model.head.load_state_dict(image_model.head.state_dict())
    return image_model, video_model


BACKBONES = {"vit_tiny": vit_tiny, "efficientnet_lite0": lambda: cnn("efficientnet_lite0"),
             "resnet18": lambda: cnn("resnet18")}
CASES = [(b, m) for b in BACKBONES for m in ZERO_INIT if not (m == "aim" and b != "vit_tiny")]


@pytest.mark.parametrize("backbone,method", CASES)
@pytest.mark.parametrize("lora", [False, True])
def test_adapted_model_computes_the_image_model_at_initialisation(backbone, method, lora):
    image_model, video_model = twin_models(BACKBONES[backbone], ZERO_INIT[method], lora)
    clips = torch.randn(2, FRAMES, 3, 32, 32)
    with torch.no_grad():
        expected = image_model(clips)
        got = video_model(clips)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def train_on_order_pairs(model: VideoClassifier, steps: int = 6) -> torch.Tensor:
    """A few steps on clips whose class is their frame order (class 1: class 0 reversed);
    returns a test clip."""
    torch.manual_seed(1)
    clips = torch.randn(4, FRAMES, 3, 32, 32)
    inputs = torch.cat([clips, clips.flip(1)])
    labels = torch.tensor([0] * 4 + [1] * 4)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), clips[:1]


@pytest.mark.parametrize("method", [
    "st_adapter", pytest.param("aim", marks=pytest.mark.slow),
    pytest.param("evl", marks=pytest.mark.slow), "token_shift"])
def test_vit_adapters_become_order_sensitive_after_a_few_steps(method):
    temporal_cls = {**ZERO_INIT, "token_shift": TokenShift}[method]
    torch.manual_seed(0)
    backbone = vit_tiny()
    model = VideoClassifier(backbone, temporal_cls(backbone.num_features, FRAMES), 2)
    FinetuneSchedule("adapter").prepare(model)  # the backbone frozen: only adapters learn
    model, clip = train_on_order_pairs(model)
    with torch.no_grad():
        forward, backward = model.clip_features(clip), model.clip_features(clip.flip(1))
    # Average pooling's difference is float rounding (~1e-7, next test); the adapters' is
    # 5e-5 (AIM, EVL: attention over time starts near uniform) to 0.5 (token shift).
    assert (forward - backward).abs().max() > 1e-5


def test_average_pooling_stays_order_blind_on_the_same_steps():
    torch.manual_seed(0)
    backbone = vit_tiny()
    model, clip = train_on_order_pairs(VideoClassifier(backbone, AvgPool(backbone.num_features), 2))
    with torch.no_grad():
        forward, backward = model.clip_features(clip), model.clip_features(clip.flip(1))
    assert (forward - backward).abs().max() < 1e-6


def test_token_shift_moves_one_eighth_of_the_channels_each_way():
    x = torch.arange(2 * 3 * 5 * 8, dtype=torch.float).view(2 * 3, 5, 8)  # B=2, T=3, L=5, C=8
    out = temporal_shift(x, 3, channel_dim=-1).view(2, 3, 5, 8)
    clips = x.view(2, 3, 5, 8)
    assert torch.equal(out[:, :2, :, 0], clips[:, 1:, :, 0]) and (out[:, 2, :, 0] == 0).all()
    assert torch.equal(out[:, 1:, :, 1], clips[:, :2, :, 1]) and (out[:, 0, :, 1] == 0).all()
    assert torch.equal(out[:, :, :, 2:], clips[:, :, :, 2:])
    with pytest.raises(ValueError, match="not a multiple of 3"):
        temporal_shift(x[:5], 3, channel_dim=-1)
    # TSM's shift on maps (B*T, C, H, W) is the same function: tokens as a C x L x 1 map
    maps = x.transpose(1, 2).unsqueeze(-1)
    assert torch.equal(temporal_shift(maps, 3).squeeze(-1).transpose(1, 2), out.view_as(x))


@pytest.mark.parametrize("method", [AIM, TokenShift])
def test_vit_only_methods_name_the_supported_families_for_a_cnn(method):
    backbone = cnn("resnet18")
    with pytest.raises(UnsupportedBackboneError, match=r"\['vit'\].*'resnet18' is a cnn"):
        VideoClassifier(backbone, method(backbone.num_features, FRAMES), 2)


def test_a_backbone_of_no_supported_family_gets_an_error_listing_the_families():
    backbone = create_backbone("test_maxvit", pretrained=False)  # MaxViT: neither family
    with pytest.raises(UnsupportedBackboneError, match="supported: vit .* cnn"):
        VideoClassifier(backbone, STAdapter(backbone.num_features, FRAMES), 2)
    assert backbone_family(vit_tiny()) == "vit"


def test_blocks_and_lora_layers_are_found_by_their_declared_classes_not_by_name():
    assert len(cnn_block_types()) == len(CNN_BLOCKS)  # every declared class is installed
    assert {"Attention", "EvaAttention", "Mlp", "SwiGLU"} <= {
        cls.__name__ for cls in vit_projection_owners()}

    class Bottleneck(torch.nn.Module):  # a block's name, not a declared block class
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 1)

    model = torch.nn.Sequential(Bottleneck(), torch.nn.Flatten())
    with pytest.raises(UnsupportedBackboneError, match="no family"):
        backbone_family(Backbone(model, 8, ImageDataConfig(), "look_alike"))


@pytest.mark.parametrize("make_backbone", [vit_tiny, lambda: cnn("efficientnet_lite0")])
def test_lora_merges_into_the_weights_with_the_same_output(make_backbone):
    torch.manual_seed(0)
    backbone = make_backbone()
    layers = apply_lora(backbone, LoraSettings(rank=4))
    assert layers > 0
    model = VideoClassifier(backbone, AvgPool(backbone.num_features), 3).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.02)  # as after training: the adapters do something
    clips = torch.randn(2, FRAMES, 3, 32, 32)
    with torch.no_grad():
        before = model(clips)
        assert merge_lora(model) == layers
        after = model(clips)
    assert not any("lora_" in name for name, _ in model.named_parameters())
    assert torch.allclose(before, after, atol=1e-4), (before - after).abs().max()


def test_lora_targets_attention_and_mlp_of_every_vit_block():
    backbone = vit_tiny()
    apply_lora(backbone, LoraSettings(rank=2))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in backbone.model.named_parameters()
               if ".lora_A." in n}
    expected = {f"blocks.{i}.{part}" for i in range(len(backbone.model.blocks))
                for part in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}
    assert adapted == expected


@pytest.mark.parametrize("train_norms", [False, True])
def test_finetune_adapter_trains_only_adapters_lora_head_and_optionally_norms(train_norms):
    torch.manual_seed(0)
    backbone = cnn("efficientnet_lite0")
    apply_lora(backbone, LoraSettings(rank=2))
    model = VideoClassifier(backbone, STAdapter(backbone.num_features, FRAMES), 4)
    schedule = FinetuneSchedule("adapter", train_norms=train_norms)
    schedule.prepare(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    backbone_trainable = {n for n in trainable if n.startswith("backbone.")}
    others = trainable - backbone_trainable
    assert all(n.startswith(("temporal.adapters.", "head.")) for n in others)
    assert any(n.startswith("temporal.adapters.") for n in trainable)
    norms = {n for n in backbone_trainable if ".bn" in n}
    assert backbone_trainable - norms == {n for n in backbone_trainable if ".lora_" in n}
    assert bool(norms) == train_norms
    model.train()
    schedule.apply_batchnorm_modes(model, epoch=0)
    batchnorms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.training == train_norms for m in batchnorms)


def test_adapters_lora_and_head_learn_at_their_own_rates():
    torch.manual_seed(0)
    backbone = cnn("efficientnet_lite0")
    apply_lora(backbone, LoraSettings(rank=2))
    model = VideoClassifier(backbone, STAdapter(backbone.num_features, FRAMES), 4)
    schedule = FinetuneSchedule("adapter", adapter_lr_scale=3.0, lora_lr_scale=2.0,
                                backbone_lr_scale=0.5)
    schedule.prepare(model)
    groups = {g["name"]: g for g in schedule.param_groups(model)}
    assert groups["head"]["lr_scale"] == 1.0 and groups["temporal"]["lr_scale"] == 3.0
    lora_groups = [g for name, g in groups.items() if name.startswith("backbone.")]
    assert lora_groups and all(g["lr_scale"] == pytest.approx(1.0) for g in lora_groups)
    # only finetune=adapter uses them: full fine-tuning's groups ignore the options
    full = FinetuneSchedule("full", adapter_lr_scale=3.0, lora_lr_scale=2.0)
    full.prepare(model)
    scales = {g["name"]: g["lr_scale"] for g in full.param_groups(model)}
    assert scales.pop("temporal") == 1.0 and set(scales.values()) == {1.0}
    for option in ("adapter_lr_scale", "lora_lr_scale"):
        with pytest.raises(ValueError, match=f"{option} must be positive"):
            FinetuneSchedule("adapter", **{option: 0})


def test_finetune_adapter_config_sets_the_measured_rates():
    from helpers import compose_config

    adapter = compose_config("train", ["finetune=adapter"]).finetune
    assert (adapter.adapter_lr_scale, adapter.lora_lr_scale) == (3.0, 1.0)
    full = compose_config("train", []).finetune
    assert (full.adapter_lr_scale, full.lora_lr_scale) == (1.0, 1.0)


def test_evl_temporal_convolution_starts_at_zero_and_mixes_neighbouring_frames():
    decoder = EVLDecoder(8, num_frames=4, layers=1, dim=8, heads=2, temporal_kernel=3)
    memory = torch.zeros(1, 4, 2, 8)
    memory[0, 1] = 1.0  # only frame 1 is lit
    conv = decoder.temporal_convs[0]
    assert decoder._temporal_conv(memory, conv).abs().max() == 0  # zero at initialisation
    torch.nn.init.ones_(conv.weight)
    mixed = decoder._temporal_conv(memory, conv)
    assert mixed[0, :3].gt(0).all() and mixed[0, 3].eq(0).all()  # frames 0-2 see frame 1
    with pytest.raises(ValueError, match="temporal_kernel"):
        EVLDecoder(8, num_frames=4, temporal_kernel=2)
    assert not EVLDecoder(8, num_frames=4, temporal_kernel=0).temporal_convs
