"""Recipes and examples under experiments/ work through the real entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_train_overrides

ROOT = Path(__file__).resolve().parents[1]


def train_from_experiment(folder: str, tiny_dataset, run_dir, *args: str) -> None:
    """``python -m vidtl.cli.train -cd experiments/<folder> ARGS`` with tiny settings, from the
    repository root (so that ``experiments.`` is importable)."""
    overrides = [o.replace("paths.output_dir", "hydra.run.dir")
                 for o in tiny_train_overrides(run_dir, tiny_dataset, "test=false")]
    command = [sys.executable, "-m", "vidtl.cli.train", "-cd", f"experiments/{folder}", *args,
               *overrides]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]


def test_temporal_module_from_outside_the_package(tiny_dataset, tmp_path):
    train_from_experiment("frame_difference", tiny_dataset, tmp_path / "run",
                          "model/temporal=frame_difference")
    config = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "experiments.frame_difference.frame_difference.FrameDifferencePool" in config
    assert "val/top1" in json.loads((tmp_path / "run" / "metrics.json").read_text())


RECIPES = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_composes_and_has_a_readme(recipe, tmp_path):
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={recipe}",
                                                      f"paths.output_dir={tmp_path}"])
    assert cfg.data.format in ("ucf101", "kinetics400", "ssv2", "charades")
    assert cfg.trainer.max_epochs > 1
    assert any(recipe in readme.read_text() for readme in ROOT.glob("experiments/*/README.md"))


def test_tsn_recipe_follows_mmaction2(tmp_path):
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "experiment=tsn_r50_imagenet_1x1x3_ucf101_split1", f"paths.output_dir={tmp_path}"])
    assert cfg.model.backbone.name == "torchvision:resnet50"
    assert cfg.data.num_frames == 3 and cfg.data.format == "ucf101"


def test_focal_loss_module_from_outside_with_class_balance(tiny_dataset, tmp_path):
    train_from_experiment("focal_loss", tiny_dataset, tmp_path / "run", "module=focal",
                          "module.gamma=1.5", "module.class_weights=balanced",
                          "data.balanced_sampling=true")
    config = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "experiments.focal_loss.focal_loss.FocalLossModule" in config
    assert "class weights (balanced)" in (tmp_path / "run" / "train.log").read_text()
    assert "val/top1" in json.loads((tmp_path / "run" / "metrics.json").read_text())


EVERY_MODULE_OPTION = ("module.mixup_alpha=0.8", "module.cutmix_alpha=1.0",
                      "module.label_smoothing=0.1", "module.class_weights=balanced")


@pytest.mark.parametrize("folder, choice", [("focal_loss", "module=focal"),
                                            ("frame_difference",
                                             "model/temporal=frame_difference")])
def test_every_example_composes_with_every_module_option(folder, choice, tiny_dataset,
                                                         tmp_path):
    """Issue 24: ``module=focal module.mixup_alpha=0.8`` was refused (its config did not extend
    the default module config), and its loss failed on Mixup's soft targets."""
    train_from_experiment(folder, tiny_dataset, tmp_path / "run", choice, *EVERY_MODULE_OPTION)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val/loss"] is not None


def test_focal_loss_takes_soft_targets_and_smoothing():
    import torch
    import torch.nn.functional as F

    from experiments.focal_loss.focal_loss import FocalLossModule

    module = FocalLossModule.__new__(FocalLossModule)
    torch.nn.Module.__init__(module)
    module.class_weights, module.gamma, module.label_smoothing = None, 0.0, 0.1
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]])
    expected = F.cross_entropy(logits, soft, label_smoothing=0.1)
    assert torch.allclose(module.compute_loss(logits, soft), expected)
    indices = torch.tensor([0, 2])
    assert torch.allclose(module.compute_loss(logits, indices),
                          F.cross_entropy(logits, indices, label_smoothing=0.1))


def test_focal_loss_is_cross_entropy_at_gamma_zero_and_down_weights_easy_clips():
    import torch
    import torch.nn.functional as F

    from experiments.focal_loss.focal_loss import FocalLossModule

    module = FocalLossModule.__new__(FocalLossModule)
    torch.nn.Module.__init__(module)
    module.class_weights, module.label_smoothing = None, 0.0
    logits, labels = torch.tensor([[4.0, 0.0], [0.0, 0.5]]), torch.tensor([0, 0])
    module.gamma = 0.0
    assert torch.allclose(module.compute_loss(logits, labels), F.cross_entropy(logits, labels))
    module.gamma = 2.0
    per_clip = [module.compute_loss(logits[i:i + 1], labels[i:i + 1]) for i in range(2)]
    ce = [F.cross_entropy(logits[i:i + 1], labels[i:i + 1]) for i in range(2)]
    assert per_clip[0] / ce[0] < 0.01 < per_clip[1] / ce[1]  # the easy clip counts far less


def test_dataset_format_from_outside_the_package(tiny_dataset, tmp_path):
    videos = sorted(tiny_dataset.rglob("*.avi"))
    lines = [json.dumps({"video": f"clips/{v.relative_to(tiny_dataset)}", "label": v.parent.name,
                         "subset": "train" if "_g01_" in v.name or "_g02_" in v.name else "val"})
             for v in videos]
    root = tmp_path / "jsonl_data"
    root.mkdir()
    (root / "clips").symlink_to(tiny_dataset)  # videos linked in from elsewhere: inside the root
    (root / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    train_from_experiment("jsonl_format", root, run, "data=jsonl",  # data.root=root
                          *EVERY_MODULE_OPTION)
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "experiments.jsonl_format.jsonl_format.read_jsonl" in config
    assert "jsonl_data" in (run / "train.log").read_text()  # the index came from our root
    assert "val/top1" in json.loads((run / "metrics.json").read_text())


def test_dataset_format_errors_name_the_file_and_line(tmp_path):
    from experiments.jsonl_format.jsonl_format import read_jsonl
    from vidtl.data.annotations.formats import DatasetLayoutError

    (tmp_path / "annotations.jsonl").write_text('{"video": "a.mp4", "label": "x"}\n')
    with pytest.raises(DatasetLayoutError, match=r"annotations.jsonl:1: expected JSON lines"):
        read_jsonl(tmp_path)


def test_every_published_target_names_its_source_table():
    """A number to expect is only as good as its source: each one in the recipes table names
    the table it was read from (a model zoo's or a repository README's)."""
    rows = [line for line in (ROOT / "experiments" / "README.md").read_text().splitlines()
            if line.startswith("| [`")]
    assert len(rows) >= 5
    for row in rows:
        target = row.split("|")[3]
        if any(ch.isdigit() for ch in target):
            assert "table" in target, row
