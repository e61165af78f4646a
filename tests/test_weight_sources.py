"""Issue 26: what a checkpoint's tensor is comes from a declaration of the library or tool that
wrote it (timm's pretrained_cfg, a table per torchvision model class, a layout per writer of
checkpoints, the TSM wrapper), never from what its name looks like."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidtl.models.backbones import PretrainedMismatchError, create_backbone
from vidtl.models.weight_sources import (
    LAYOUTS,
    TORCHVISION_CLASSIFIERS,
    KeyMap,
    declared_classifier,
)

# One builder per class of TORCHVISION_CLASSIFIERS (and a quantizable subclass).
TORCHVISION_MODELS = ["alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "googlenet",
                      "inception_v3", "maxvit_t", "mnasnet0_5", "mobilenet_v2",
                      "mobilenet_v3_small", "regnet_x_400mf", "resnet18", "shufflenet_v2_x0_5",
                      "swin_t", "vgg11", "vit_b_32", "mvit_v2_s", "r3d_18", "swin3d_t",
                      "quantized_resnet18"]


def torchvision_model(name: str) -> nn.Module:
    import torchvision

    if name.startswith("regnet"):  # its initialisation copies tensors: not on the meta device
        return torchvision.models.get_model(name, weights=None)
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None)


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_the_torchvision_table_names_the_last_linear_layer(name):
    """The declared classifier is the layer the backbone used to drop (the last linear one)."""
    model = torchvision_model(name)
    (head,) = declared_classifier(model)
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert head == linear[-1]


def test_every_class_of_the_torchvision_table_is_tested():
    classes = {f"{c.__module__}.{c.__qualname__}"
               for name in TORCHVISION_MODELS for c in type(torchvision_model(name)).__mro__}
    assert set(TORCHVISION_CLASSIFIERS) <= classes


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "mobilenetv3_small_050",
                                  "efficientnet_lite0", "test_vit"])
def test_timm_declares_the_tensors_a_headless_model_lacks(name):
    import timm

    full = timm.create_model(name, pretrained=False).state_dict()
    headless = create_backbone(name, pretrained=False).model
    heads = declared_classifier(headless)
    assert {k for k in full if k not in headless.state_dict()} == {
        k for k in full if any(k.startswith(h + ".") for h in heads)}


def test_a_model_of_no_declaring_library_has_no_classifier():
    assert declared_classifier(nn.Sequential(nn.Linear(2, 2))) == ()


def test_a_torchvision_model_without_a_declared_linear_classifier_is_refused():
    with pytest.raises(ValueError, match="no linear classifier to remove"):
        create_backbone("torchvision:squeezenet1_0", pretrained=False)


def test_batch_counts_are_the_only_optional_tensors():
    model = create_backbone("torchvision:resnet18", pretrained=False).model
    assert KeyMap(model).optional == {k for k in model.state_dict()
                                      if k.endswith("num_batches_tracked")}


def test_each_layout_places_the_backbone_and_ignores_its_declared_other_parts():
    model = create_backbone("torchvision:resnet18", pretrained=False).model
    keys = KeyMap(model)
    for layout in LAYOUTS:
        assert keys.backbone_name(f"{layout.prefix}layer1.0.conv1.weight") == \
            "layer1.0.conv1.weight", layout
        assert keys.is_classifier(f"{layout.prefix}fc.weight"), layout
        assert all(keys.is_classifier(f"{other}.weight") for other in layout.others), layout
    assert not keys.is_classifier("adapter.head.weight")  # a head where no layout has one


def test_the_tsm_wrapper_is_dropped_only_where_the_model_has_the_wrapped_module():
    keys = KeyMap(create_backbone("torchvision:resnet18", pretrained=False).model)
    assert keys.backbone_name("module.base_model.layer1.0.conv1.net.weight") == \
        "layer1.0.conv1.weight"
    assert keys.backbone_name("layer1.0.net.conv1.weight") == "layer1.0.conv1.weight"
    assert keys.backbone_name("net.conv1.weight") is None  # no wrapper at the root
    assert keys.backbone_name("layer1.0.conv9.net.weight") is None


@pytest.mark.parametrize("writer", ["video_classifier", "openmmlab", "pretrainedmodels",
                                    "tsm_repository"])
def test_checkpoints_of_declared_writers_load(tmp_path, writer):
    source = create_backbone("torchvision:resnet18", pretrained=False).model.state_dict()
    prefix, others = {
        "video_classifier": ("backbone.model.", ["temporal.proj.weight", "head.weight"]),
        "openmmlab": ("backbone.", ["cls_head.fc_cls.weight"]),
        "pretrainedmodels": ("", ["last_linear.weight"]),
        "tsm_repository": ("module.base_model.", ["module.base_model.fc.weight",
                                                  "module.new_fc.weight"]),
    }[writer]
    state = {**{prefix + k: v for k, v in source.items()},
             **{k: torch.zeros(3) for k in others}}
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    loaded = create_backbone("torchvision:resnet18", pretrained=tmp_path / "w.pth")
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in source.items())


def test_a_head_in_an_undeclared_place_is_unexpected(tmp_path):
    source = create_backbone("torchvision:resnet18", pretrained=False).model.state_dict()
    torch.save({**source, "layer4.head.weight": torch.zeros(3)}, tmp_path / "w.pth")
    with pytest.raises(PretrainedMismatchError, match=r"1 unexpected \(layer4.head.weight\)"):
        create_backbone("torchvision:resnet18", pretrained=tmp_path / "w.pth")
