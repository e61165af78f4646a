"""Starting a run from another run (issue 24): ``init_from=`` loads every tensor that fits and a
new head, and says so; ``ckpt_path=`` onto other classes stops with one line pointing to it."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import compose_config, make_video, tiny_train_overrides

from vidtl.assembly.data import build_datamodule
from vidtl.cli.starting_point import start_weights
from vidtl.cli.train import build_training_module, train
from vidtl.core.errors import UserError
from vidtl.training.resume_point import ResumePoint

MODEL = ["model/temporal=transformer", "model.temporal.dim=32", "model.temporal.depth=1"]


@pytest.fixture(scope="module")
def source_run(tiny_dataset, tmp_path_factory):
    """A run of 8 classes with a trained temporal transformer."""
    out = tmp_path_factory.mktemp("source")
    train(compose_config("train", tiny_train_overrides(out, tiny_dataset, *MODEL, "test=false",
                                                       "logger=none")))
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("two") / "folder"
    for split in ("train", "val"):
        for label, name in enumerate(("jump", "run")):
            for i in range(2):
                make_video(root / split / name / f"{i}.avi", seed=10 * label + i)
    return root


def fresh_module(tmp_path, root, *extra):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, root, "data=folder", *MODEL,
                                                       *extra))
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    return cfg, build_training_module(cfg, datamodule), datamodule.class_names


def test_init_from_loads_what_fits_and_a_new_head(source_run, two_classes, tmp_path, caplog):
    """Issue 24: ``pretrained=<a vidtl checkpoint>`` dropped the temporal module's trained
    weights with only a tensor count logged."""
    caplog.set_level(logging.INFO)
    cfg, module, classes = fresh_module(tmp_path, two_classes, f"init_from={source_run}")
    start_weights(cfg, module, ResumePoint(), classes)
    source = torch.load(source_run, weights_only=True)["state_dict"]
    state = module.state_dict()
    temporal = [k for k in source if k.startswith("classifier.temporal.")]
    assert temporal and all(torch.equal(state[k], source[k]) for k in temporal)
    assert all(torch.equal(state[k], source[k]) for k in source
               if k.startswith("classifier.backbone."))
    assert state["classifier.head.weight"].shape == (2, 32)
    line = next(r.getMessage() for r in caplog.records if "init_from" in r.getMessage())
    assert "classifier head" in line and "temporal" in line and "backbone" in line


def test_the_head_is_new_even_for_as_many_classes(source_run, tiny_dataset, tmp_path):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, tiny_dataset, *MODEL,
                                                       f"init_from={source_run}"))
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    module = build_training_module(cfg, datamodule)
    start_weights(cfg, module, ResumePoint(), datamodule.class_names)
    source = torch.load(source_run, weights_only=True)["state_dict"]
    assert not torch.equal(module.state_dict()["classifier.head.weight"],
                           source["classifier.head.weight"])


def test_a_run_starts_from_another_and_resuming_onto_other_classes_is_refused(
        source_run, two_classes, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path / "init", two_classes, "data=folder", *MODEL, "test=false", "logger=none",
        f"init_from={source_run}")))
    assert "val/top1" in metrics and "init_from" in caplog.text
    with pytest.raises(UserError, match=r"a model of 8 classes and this data has 2: .* use "
                                        r"init_from="):
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "resume", two_classes, "data=folder", *MODEL, "test=false",
            "logger=none", f"ckpt_path={source_run}")))


def test_a_vidtl_checkpoint_as_pretrained_weights_says_what_it_leaves_out(source_run,
                                                                         tmp_path, caplog):
    from vidtl.models.backbones import read_state_dict

    read_state_dict(source_run)
    assert "init_from=" in caplog.text and "temporal" in caplog.text
