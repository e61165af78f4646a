"""vidtl-export: ONNX and TorchScript models that take uint8 clips, checked against PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import compose_config
from hydra import compose, initialize_config_dir

from vidtl.assembly.data import clip_pipeline
from vidtl.assembly.model import build_classifier
from vidtl.cli import config_dir
from vidtl.cli.export import export
from vidtl.core.errors import UserError
from vidtl.data.loading.device_stage import DeviceStage
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.inference.export import export_classifier, sidecar_path
from vidtl.inference.file_views import VideoViews

TOLERANCE = 1e-4  # fp32



def real_clips(tiny_dataset, data) -> torch.Tensor:
    """uint8 ``(B, T, C, H, W)`` clips decoded from real video files of the tiny dataset."""
    videos = sorted(tiny_dataset.rglob("*.avi"))[::7][:3]
    views = VideoViews.from_pipeline(videos, clip_pipeline(data).with_test_views(1, 1))
    return torch.stack([views[i][1][0] for i in range(len(videos))])


def exported_logits(path, fmt: str, clips: torch.Tensor) -> np.ndarray:
    """Run the exported file on uint8 ``(B, T, H, W, C)`` clips."""
    frames_last = clips.permute(0, 1, 3, 4, 2).contiguous()
    if fmt == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(frames_last).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"clips": frames_last.numpy()})[0]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_of_a_checkpoint_matches_pytorch_on_real_clips(tiny_checkpoint, tiny_dataset,
                                                               tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    path = export(compose_config("export", [f"ckpt_path={tiny_checkpoint}", f"format={fmt}",
                                  f"output={tmp_path / 'model' / ('avg.' + fmt)}"]))
    model = load_trained_model(tiny_checkpoint)
    clips = real_clips(tiny_dataset, model.config.data)
    with torch.no_grad():
        expected = model.module.score_clips(clips).numpy()
    got = exported_logits(path, fmt, clips)
    assert got.shape == expected.shape == (3, 8)
    assert np.abs(got - expected).max() < TOLERANCE
    description = json.loads(sidecar_path(path).read_text())
    assert description["class_names"] == model.class_names
    assert description["input"]["shape"] == ["batch", 2, 32, 32, 3]
    assert description["input"]["dtype"] == "uint8"
    assert description["clip_sampling"]["sampler"] == "segment"
    assert not list((tmp_path / "model").glob(".*partial*"))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_tsm_export_matches_pytorch_on_real_clips(tiny_dataset, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model/backbone=resnet18", "model.backbone.pretrained=false", "model/temporal=tsm",
            "data.num_frames=4", "data.crop_size=32", "data.short_side=32"])
    torch.manual_seed(0)
    classifier = build_classifier(cfg.model, 8, 4).eval()
    path = export_classifier(classifier, [f"c{i}" for i in range(8)], 4, 32,
                             tmp_path / f"tsm.{fmt}", fmt)
    clips = real_clips(tiny_dataset, cfg.data)
    config = classifier.backbone.data_config
    normalised = DeviceStage(config.mean, config.std).normalize(clips)
    with torch.no_grad():
        expected = classifier(normalised.clone()).numpy()
        classifier.temporal.shift.enabled = False
        without_shifts = classifier(normalised.clone()).numpy()
    got = exported_logits(path, fmt, clips)
    assert np.abs(got - expected).max() < TOLERANCE
    assert np.abs(got - without_shifts).max() > 100 * TOLERANCE  # the shifts are in the graph


def test_export_refuses_an_unknown_format(tiny_checkpoint, tmp_path):
    with pytest.raises(UserError, match="format must be one of"):
        export(compose_config("export", [f"ckpt_path={tiny_checkpoint}", "format=tflite",
                               f"output={tmp_path / 'm'}"]))


ADAPTED = {  # (backbone overrides, temporal, lora): adapters of both families, LoRA merged
    "vit_aim_lora": (["model/backbone=timm", "model.backbone.name=vit_tiny_patch16_224",
                      "+model.backbone.img_size=32", "+model.backbone.depth=2"], "aim", True),
    "vit_token_shift": (["model/backbone=timm", "model.backbone.name=vit_tiny_patch16_224",
                         "+model.backbone.img_size=32", "+model.backbone.depth=2"],
                        "token_shift", False),
    "cnn_st_adapter_lora": (["model/backbone=timm", "model.backbone.name=test_resnet"],
                            "st_adapter", True),
    "cnn_evl": (["model/backbone=timm", "model.backbone.name=test_resnet"], "evl", False),
}


FAST_EXPORTS = {("vit_aim_lora", "onnx"), ("cnn_st_adapter_lora", "torchscript")}


@pytest.mark.parametrize("case,fmt", [
    pytest.param(case, fmt, marks=() if (case, fmt) in FAST_EXPORTS else pytest.mark.slow)
    for case in ADAPTED for fmt in ("torchscript", "onnx")
])
def test_adapted_and_lora_models_export_with_parity(tiny_dataset, tmp_path, case, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    backbone, temporal, lora = ADAPTED[case]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            *backbone, "model.backbone.pretrained=false", f"model/temporal={temporal}",
            *(["model/lora=default"] if lora else []),
            "data.num_frames=4", "data.crop_size=32", "data.short_side=32"])
    torch.manual_seed(0)
    classifier = build_classifier(cfg.model, 8, 4).eval()
    with torch.no_grad():  # as after training: adapters and LoRA layers away from zero
        for name, parameter in classifier.named_parameters():
            if any(part in name for part in ("adapters", "lora_B", "time_embed", "temporal.out",
                                             "head.weight")):
                parameter.normal_(std=0.2)
    clips = real_clips(tiny_dataset, cfg.data)
    config = classifier.backbone.data_config
    normalised = DeviceStage(config.mean, config.std).normalize(clips)
    with torch.no_grad():
        expected = classifier(normalised.clone()).numpy()
        expected_reversed = classifier(normalised.flip(1)).numpy()
    path = export_classifier(classifier, [f"c{i}" for i in range(8)], 4, 32,
                             tmp_path / f"{case}.{fmt}", fmt)
    assert not any("lora_" in n for n, _ in classifier.named_parameters())  # merged
    got = exported_logits(path, fmt, clips)
    assert np.abs(got - expected).max() < TOLERANCE
    # The temporal modelling is in the graph: reversed clips give other logits there too.
    assert np.abs(exported_logits(path, fmt, clips.flip(1)) - expected_reversed).max() < TOLERANCE
    assert np.abs(expected_reversed - expected).max() > 10 * TOLERANCE
