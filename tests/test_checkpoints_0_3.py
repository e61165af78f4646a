"""Checkpoints written by vidtl 0.3.0 still load and compute what they computed then
(tests/fixtures/vidtl_0_3: real files of 0.3.0, and the logits 0.3.0 gave for a fixed input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import compose_config

import vidtl
from vidtl.cli.evaluate import evaluate
from vidtl.inference.checkpoint_model import load_trained_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vidtl_0_3"
EXPECTED = json.loads((FIXTURES / "expected_logits.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_0_3_checkpoint_gives_the_logits_it_gave_in_0_3(name):
    model = load_trained_model(FIXTURES / f"{name}.pt")
    assert model.class_names == EXPECTED[name]["class_names"]
    clips = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model.module.forward_clips(clips)
    assert torch.allclose(logits, torch.tensor(EXPECTED[name]["logits"]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_0_3_checkpoint_predicts_and_evaluates(name, tiny_dataset, tmp_path):
    path = FIXTURES / f"{name}.pt"
    clip = torch.randint(0, 256, (2, 40, 48, 3), dtype=torch.uint8)
    prediction = vidtl.load(path, device="cpu").predict(clip, top_k=2)
    assert len(prediction.classes) == 2 and set(prediction.classes) <= set(
        EXPECTED[name]["class_names"])
    cfg = compose_config("eval", [f"ckpt_path={path}", f"data.root={tiny_dataset}",
                                  "data.num_workers=0", "logger=none",
                                  f"paths.output_dir={tmp_path}", "trainer.accelerator=cpu"])
    metrics = evaluate(cfg)
    assert 0 <= metrics["test/top1"] <= 1 and 0 <= metrics["val/top1"] <= 1
