"""Parameter-efficient training through the real entry points: a ViT-Tiny with AIM adapters and
LoRA under finetune=adapter, trained, evaluated from its checkpoint and exported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import compose_config, tiny_train_overrides
from test_cli_export import TOLERANCE, exported_logits, real_clips

from vidtl.cli.evaluate import evaluate
from vidtl.cli.export import export
from vidtl.cli.train import train
from vidtl.inference.checkpoint_model import load_trained_model

VIT_AIM_LORA = ["model/backbone=timm", "model.backbone.name=vit_tiny_patch16_224",
                "+model.backbone.img_size=32", "+model.backbone.depth=2", "model/temporal=aim",
                "model/lora=default", "finetune=adapter", "optimizer=adamw", "data.num_frames=4"]


@pytest.fixture(scope="module")
def adapter_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter_run")
    metrics = train(compose_config("train", tiny_train_overrides(out, tiny_dataset,
                                                                 *VIT_AIM_LORA)))
    return out, metrics


def test_adapter_run_reports_trainable_parameters_and_peak_memory(adapter_run):
    out, metrics = adapter_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["total_params"] > saved["trainable_params"] > 0
    assert saved["trainable_share"] == pytest.approx(
        saved["trainable_params"] / saved["total_params"])
    assert saved["trainable_share"] < 0.5  # the ViT's own weights stay frozen
    assert saved["peak_rss_mb"] > 100
    assert metrics["test/top1"] == saved["test/top1"]


def test_adapter_checkpoint_evaluates_to_the_same_metrics(adapter_run, tmp_path):
    out, train_metrics = adapter_run
    metrics = evaluate(compose_config("eval", [
        f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", f"paths.output_dir={tmp_path}",
        "data.num_workers=0", "data.batch_size=4", "trainer.accelerator=cpu",
        "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]))  # the training run's
    # batches (a checkpoint's loader settings are not used: the batch size is given here)
    assert metrics["test/top1"] == pytest.approx(train_metrics["test/top1"])
    assert metrics["test/loss"] == pytest.approx(train_metrics["test/loss"], rel=1e-4)


def test_adapter_checkpoint_exports_with_lora_merged(adapter_run, tiny_dataset, tmp_path):
    out, _ = adapter_run
    checkpoint = out / "checkpoints" / "last.ckpt"
    path = export(compose_config("export", [f"ckpt_path={checkpoint}", "format=torchscript",
                                            f"output={tmp_path / 'model.pt'}"]))
    scripted = torch.jit.load(str(path))
    assert not [name for name in scripted.state_dict() if "lora" in name]  # merged, not carried
    model = load_trained_model(checkpoint)
    clips = real_clips(tiny_dataset, model.config.data)
    with torch.no_grad():
        expected = model.module.score_clips(clips).numpy()
    assert np.abs(exported_logits(path, "torchscript", clips) - expected).max() < TOLERANCE
