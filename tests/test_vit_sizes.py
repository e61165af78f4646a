"""A ViT at any crop size (issue 24): the image size follows ``data.crop_size``, pretrained
weights of another size still load (position embeddings resampled, as timm does), for a local
file, timm's own loader and a transfer from another run. ``vit_tiny_patch16_224`` at 224 px
with pretrained weights saved at 224 px stands for a pretrained ViT; nothing is downloaded."""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from helpers import compose_config, tiny_train_overrides
from timm.layers import resample_abs_pos_embed

from vidtl.assembly.data import build_datamodule
from vidtl.cli.train import build_training_module, train
from vidtl.inference.transfer import transfer_weights

NAME = "vit_tiny_patch16_224"


@pytest.fixture(scope="module")
def weights_at_224(tmp_path_factory):
    """A ViT-Tiny's weights, saved at its pretraining size (224 px: a 14x14 patch grid)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vit") / "vit_tiny_224.pth"
    torch.save(timm.create_model(NAME, num_classes=0).state_dict(), path)
    return path


def vit_overrides(tmp_path, root, size: int, *extra: str) -> list[str]:
    return tiny_train_overrides(tmp_path, root, "model/backbone=timm",
                                f"model.backbone.name={NAME}", f"data.crop_size={size}",
                                f"data.short_side={size}", "trainer.limit_train_batches=1",
                                "trainer.limit_val_batches=1", "test=false", "logger=none",
                                *extra)


def built_backbone(cfg):
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    return build_training_module(cfg, datamodule).classifier.backbone.model


def expected_pos_embed(source: torch.Tensor, size: int) -> torch.Tensor:
    grid = size // 16
    return source if grid == 14 else resample_abs_pos_embed(source, [grid, grid],
                                                           num_prefix_tokens=1)


@pytest.mark.parametrize("size", [112, 224])
def test_a_vit_trains_at_the_crop_size_with_its_pretrained_weights(size, weights_at_224,
                                                                   tiny_dataset, tmp_path):
    """At 112 px, timm's ViT raised an AssertionError in the sanity check ("Input height (112)
    doesn't match model (224)") unless +model.backbone.img_size=112 was found in the docs."""
    source = torch.load(weights_at_224, weights_only=True)
    cfg = compose_config("train", vit_overrides(tmp_path, tiny_dataset, size,
                                                f"model.backbone.pretrained={weights_at_224}"))
    model = built_backbone(cfg)
    assert model.patch_embed.img_size == (size, size)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.items() if k != "pos_embed")
    assert torch.allclose(state["pos_embed"], expected_pos_embed(source["pos_embed"], size))
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))


def test_timms_own_pretrained_loading_resamples_too(weights_at_224, tiny_dataset, tmp_path):
    """``pretrained=true`` goes through timm's loader (its file here, a download otherwise)."""
    source = torch.load(weights_at_224, weights_only=True)
    cfg = compose_config("train", vit_overrides(
        tmp_path, tiny_dataset, 112, "model.backbone.pretrained=true",
        f"+model.backbone.pretrained_cfg_overlay={{file: '{weights_at_224}'}}"))
    state = built_backbone(cfg).state_dict()
    assert torch.equal(state["blocks.0.attn.qkv.weight"], source["blocks.0.attn.qkv.weight"])
    assert torch.allclose(state["pos_embed"], expected_pos_embed(source["pos_embed"], 112))


def test_a_transfer_to_another_crop_size_resamples_the_position_embeddings(
        weights_at_224, tiny_dataset, tmp_path, caplog):
    """``init_from`` a 224 px ViT run into a 112 px run: nothing dropped but the head."""
    def module_at(size: int, folder: str):
        cfg = compose_config("train", vit_overrides(
            tmp_path / folder, tiny_dataset, size, f"model.backbone.pretrained={weights_at_224}"))
        datamodule = build_datamodule(cfg.data)
        datamodule.prepare_data()
        return build_training_module(cfg, datamodule)

    caplog.set_level(logging.INFO)
    trained, fresh = module_at(224, "a"), module_at(112, "b")
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(0.01)
    report = transfer_weights(fresh, trained.state_dict())
    assert set(report.dropped.values()) == {"of the classifier head, new for this run's classes"}
    key = "classifier.backbone.model.pos_embed"
    assert torch.allclose(fresh.state_dict()[key],
                          expected_pos_embed(trained.state_dict()[key], 112))


def test_frames_of_another_size_than_the_vit_was_built_for_are_one_line(weights_at_224):
    """Evaluating a 112 px ViT with data.crop_size=160 ended in timm's AssertionError."""
    from vidtl.cli.errors import one_line
    from vidtl.models.backbones import ImageSizeError, create_backbone

    backbone = create_backbone(NAME, str(weights_at_224), image_size=112)
    assert backbone(torch.randn(1, 3, 112, 112)).shape == (1, 192)
    with pytest.raises(ImageSizeError) as error:
        backbone(torch.randn(1, 3, 160, 160))
    assert "data.crop_size=112" in one_line(error.value)
    dynamic = create_backbone(NAME, False, image_size=112, dynamic_img_size=True)
    assert dynamic.fixed_image_size() is None and dynamic(torch.randn(1, 3, 160, 160)).ndim == 2
    assert create_backbone("test_efficientnet", False, image_size=112).fixed_image_size() is None
