"""data=charades end to end: the official layout written here (timed actions, a video without
any), clip labels from the actions a clip's frames overlap, video-level labels for the test
views, and a train, eval, predict and export run reporting mAP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import compose_config, make_datamodule, tiny_train_overrides
from multilabel_data import charades_actions, write_charades

import vidtl
from vidtl.cli.evaluate import evaluate
from vidtl.cli.export import export
from vidtl.cli.extract import extract
from vidtl.cli.train import train

CHARADES = ["data=charades", "task=multilabel", "data.num_test_clips=2",
            "trainer.limit_train_batches=null", "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null"]


@pytest.fixture(scope="module")
def charades_root(tmp_path_factory):
    return write_charades(tmp_path_factory.mktemp("charades"))


def test_clips_get_the_labels_of_the_actions_they_overlap(charades_root):
    datamodule = make_datamodule(charades_root, format="charades", sampler="dense",
                                 num_frames=2, frame_interval=8, crop_size=32, short_side=32,
                                 num_workers=0, num_test_clips=2)
    assert datamodule.class_names == ["Holding some clothes", "Opening a door",
                                      "Sitting on a chair"]
    val = datamodule.dataset("val")
    for position, record in enumerate(val.records):
        number = int(record.path.stem[1:])
        _, target = val[position]
        # the centred clip: frames 20 and 28 of 50 at 25 fps, 0.80-1.16 s: the end of c000,
        # the start of c001, and c002 where the video has it
        expected = ([0.0, 0.0, 0.0] if charades_actions(number) == ""
                    else [1.0, 1.0, float(number % 2)])
        assert target.tolist() == expected, record.path
    test = datamodule.dataset("test")
    _, target, _ = test[0]
    number = int(test.records[0].path.stem[1:])
    assert target.tolist() == ([1.0, 1.0, float(number % 2)] if charades_actions(number)
                               else [0.0, 0.0, 0.0])


def test_training_clips_inside_one_action_get_only_its_label(charades_root):
    datamodule = make_datamodule(charades_root, format="charades", sampler="dense",
                                 num_frames=2, frame_interval=2, crop_size=32, short_side=32,
                                 num_workers=0)
    train_set = datamodule.dataset("train")
    first = next(i for i, r in enumerate(train_set.records) if int(r.path.stem[1:]) % 2 == 0
                 and charades_actions(int(r.path.stem[1:])))
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        train_set._rng = None  # a new draw from the seeded generator
        _, target = train_set[first]
        seen.add(tuple(target.tolist()))
    # 3-frame clips (0.12 s) fall in c000 (0-0.9 s), c001 (1.1-2 s) or the gap between
    assert seen <= {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 0.0)}
    assert {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)} <= seen


def test_charades_run_trains_evaluates_predicts_and_exports(charades_root, tmp_path):
    out = tmp_path / "run"
    metrics = train(compose_config("train", tiny_train_overrides(
        out, charades_root, *CHARADES, "logger=none")))
    saved = json.loads((out / "metrics.json").read_text())
    assert 0 <= saved["test/mAP"] <= 1 and 0 <= saved["val/mAP"] <= 1
    assert metrics["test/mAP"] == saved["test/mAP"]
    checkpoint = saved["evaluated_checkpoint"]
    evaluated = evaluate(compose_config("eval", [
        f"ckpt_path={checkpoint}", f"paths.output_dir={tmp_path / 'eval'}", "logger=none",
        "trainer.accelerator=cpu", "data.num_workers=0", "subsets=[test]",
        "view_aggregation=max"]))
    assert 0 <= evaluated["test/mAP"] <= 1
    model = vidtl.load(checkpoint, device="cpu")
    video = charades_root / "Charades_v1_480" / "V0008.mp4"
    prediction = model.predict(str(video))
    probabilities = model.probabilities(str(video))[0].numpy()
    assert np.all((probabilities > 0) & (probabilities < 1))  # sigmoid scores
    assert set(prediction.detected) == {
        name for c, name in enumerate(model.class_names)
        if probabilities[c] >= model.thresholds[name]}
    arrays = extract(compose_config("extract", [
        f"ckpt_path={checkpoint}", "subset=test", f"output={tmp_path / 'e.npz'}",
        "device=cpu", "num_workers=0"]))
    assert arrays["labels"].shape == (4, 3)  # multi-hot rows
    assert arrays["labels"][:, 0].tolist() == [0 if charades_actions(n) == "" else 1
                                               for n in range(8, 12)]
    path = export(compose_config("export", [f"ckpt_path={checkpoint}", "format=torchscript",
                                            f"output={tmp_path / 'm.pt'}"]))
    description = json.loads(path.with_name(path.name + ".json").read_text())
    assert description["task"] == "multilabel"
    assert list(description["thresholds"]) == model.class_names
