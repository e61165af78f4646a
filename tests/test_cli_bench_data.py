"""vidtl-bench-data on tiny real videos: every figure is measured and reported."""

from __future__ import annotations

import json
import math

from hydra import compose, initialize_config_dir

from vidtl.cli import config_dir
from vidtl.cli.bench_data import bench_data

TINY = ["data.synthetic=null", "data.num_frames=2", "data.crop_size=32", "data.short_side=32",
        "data.batch_size=4", "data.num_workers=1", "clips=8"]


def test_bench_data_reports_loader_decoder_and_model_rates(tiny_dataset, capsys):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="bench_data", overrides=[
            f"data.root={tiny_dataset}", *TINY, "measure_model=true", "device=cpu",
            "model/backbone=timm", "model.backbone.name=test_efficientnet",
            "model.backbone.pretrained=false", "steps=2", "warmup_steps=1"])
    results = bench_data(cfg)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == results
    for key in ("loader_clips_per_s", "bare_loop_clips_per_s", "decoder_clips_per_s",
                "model_clips_per_s", "train_clips_per_s"):
        assert math.isfinite(results[key]) and results[key] > 0, key
    assert results["loader_over_bare_loop"] == results["loader_clips_per_s"] / results[
        "bare_loop_clips_per_s"]
    assert results["precision"] == "32" and results["device"] == "cpu"


def test_bench_data_measures_no_model_without_a_gpu_by_default(tiny_dataset):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="bench_data", overrides=[f"data.root={tiny_dataset}", *TINY,
                                                           "decoder_processes=2", "device=cpu"])
    results = bench_data(cfg)
    assert results["decoder_processes"] == 2 and "model_clips_per_s" not in results
