"""Fine-tuning schedules on real clips: what learns, when, and exact resume."""

import os
import subprocess
import sys

import lightning as L
import pytest
import torch
from helpers import make_datamodule, tiny_train_overrides

from vidtl.finetune.groups import backbone_stages, batchnorm_layers
from vidtl.finetune.schedule import FinetuneSchedule
from vidtl.models.backbones import create_backbone
from vidtl.models.classifier import VideoClassifier
from vidtl.models.temporal import AvgPool
from vidtl.training.lr_schedules import cosine_with_warmup
from vidtl.training.module import VideoClassificationModule


class Stop(Exception):
    """Stands for a job killed mid-epoch."""


def build(schedule: FinetuneSchedule, backbone: str = "test_efficientnet"):
    torch.manual_seed(0)
    net = create_backbone(backbone, pretrained=False)
    classifier = VideoClassifier(net, AvgPool(net.num_features), 8, dropout=0.0)
    optimizer = lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9,  # noqa: E731
                                               weight_decay=1e-3)
    return VideoClassificationModule(classifier, [str(i) for i in range(8)], optimizer,
                                     scheduler=cosine_with_warmup, finetune=schedule)


def datamodule(root):
    return make_datamodule(root, num_frames=2, crop_size=32, short_side=32,
                           flip=False, batch_size=4, num_workers=0, pin_memory=False)


def trainer(out, epochs, callbacks=(), limit=3):
    return L.Trainer(default_root_dir=out, max_epochs=epochs, accelerator="cpu", logger=False,
                     limit_train_batches=limit, limit_val_batches=1, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0,
                     callbacks=[*callbacks, L.pytorch.callbacks.ModelCheckpoint(
                         dirpath=out, filename="last", save_top_k=1, monitor=None,
                         enable_version_counter=False)])


def stage_tensors(module):
    model = module.classifier.backbone.model
    state = model.state_dict()
    stages = {}
    for stage, names in backbone_stages(module.classifier.backbone):
        stages[f"backbone.{stage}"] = {n: state[n].clone() for n in names}
    for name, layer in batchnorm_layers(model):
        stages.setdefault("bn_stats", {})[name] = layer.running_mean.clone()
    return stages


def test_linear_probe_keeps_backbone_bit_identical(tiny_dataset, tmp_path):
    module = build(FinetuneSchedule("linear_probe"))
    before = {k: v.clone() for k, v in module.classifier.backbone.state_dict().items()}
    head_before = module.classifier.head.weight.clone()
    trainer(tmp_path, 2).fit(module, datamodule=datamodule(tiny_dataset))
    after = module.classifier.backbone.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key  # weights and BatchNorm statistics
    assert any("running_mean" in k for k in before)
    assert not torch.equal(head_before, module.classifier.head.weight)


class Snapshots(L.Callback):
    def __init__(self):
        self.at_epoch_start = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.at_epoch_start.append(stage_tensors(pl_module))


def test_gradual_unfreeze_trains_exactly_the_scheduled_stages(tiny_dataset, tmp_path):
    schedule = FinetuneSchedule("gradual_unfreeze", unfreeze_epochs=[1, 2])
    module = build(schedule)
    snapshots = Snapshots()
    trainer(tmp_path, 3, [snapshots]).fit(module, datamodule=datamodule(tiny_dataset))
    snapshots.at_epoch_start.append(stage_tensors(module))
    names = schedule.stage_names
    expected = {0: set(), 1: {names[-1]}, 2: {names[-1], names[-2]}}
    for epoch, learning in expected.items():
        before, after = snapshots.at_epoch_start[epoch], snapshots.at_epoch_start[epoch + 1]
        changed = {g for g in names if any(not torch.equal(before[g][n], after[g][n])
                                           for n in before[g])}
        assert changed == learning, (epoch, changed)
    assert len(names) >= 3


def test_param_groups_are_named_and_scaled():
    schedule = FinetuneSchedule(backbone_lr_scale=0.1, layer_decay=0.5)
    module = build(schedule)
    groups = module.configure_param_groups()
    names = [g["name"] for g in groups]
    assert names[-1] == "head" and all(n.startswith("backbone.") for n in names[:-1])
    scales = [g["lr_scale"] for g in groups[:-1]]
    assert scales[-1] == pytest.approx(0.1) and scales[-2] == pytest.approx(0.05)
    assert groups[-1]["lr_scale"] == 1.0
    count = sum(len(g["params"]) for g in groups)
    assert count == len(list(module.classifier.parameters()))


def test_partial_and_frozen_batchnorm(tiny_dataset):
    module = build(FinetuneSchedule(partial_bn=True))
    module.train()
    modes = [layer.training for _, layer in batchnorm_layers(module.classifier.backbone.model)]
    assert modes[0] and not any(modes[1:])
    module = build(FinetuneSchedule(freeze_bn=True))
    module.train()
    assert not any(layer.training for _, layer in
                   batchnorm_layers(module.classifier.backbone.model))
    with pytest.raises(ValueError, match="unfreeze_epochs"):
        FinetuneSchedule("gradual_unfreeze")


class Recorder(L.Callback):
    """At the first batch of each epoch: trainable groups, learning rates, BatchNorm modes."""

    def __init__(self, schedule, stop_at=None):
        self.schedule, self.stop_at, self.states = schedule, stop_at, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        epoch = trainer.current_epoch
        if batch_idx == 0:
            optimizer = trainer.optimizers[0]
            frozen = self.schedule.frozen_groups(epoch)
            self.states[epoch] = {
                "trainable": sorted(g["name"] for g in optimizer.param_groups
                                    if g["name"] not in frozen),
                "lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
                "bn_train": [m.training for _, m in
                             batchnorm_layers(pl_module.classifier.backbone.model)],
                "requires_grad": sum(p.requires_grad for p in pl_module.parameters()),
            }
        if self.stop_at == (epoch, batch_idx):
            raise Stop()


@pytest.mark.parametrize("killed_in_epoch", [1, 2])
def test_resume_is_exact(tiny_dataset, tmp_path, killed_in_epoch):
    def run(out, stop_at=None, resume=None):
        schedule = FinetuneSchedule("gradual_unfreeze", unfreeze_epochs=[1, 2], partial_bn=True)
        recorder = Recorder(schedule, stop_at)
        fit = trainer(out, 3, [recorder])
        fit.fit(build(schedule), datamodule=datamodule(tiny_dataset), ckpt_path=resume)
        return recorder.states

    reference = run(tmp_path / "whole")
    with pytest.raises(Stop):
        run(tmp_path / "killed", stop_at=(killed_in_epoch, 1))
    resumed = run(tmp_path / "killed", resume=str(tmp_path / "killed" / "last.ckpt"))
    assert min(resumed) == killed_in_epoch  # restarted at the start of the killed epoch
    for epoch in resumed:
        assert resumed[epoch] == reference[epoch], epoch
    assert reference[1]["trainable"] != reference[0]["trainable"]  # the schedule did act


@pytest.mark.slow
def test_ddp_on_cpu_with_gradual_unfreeze(tiny_dataset, tmp_path):
    overrides = tiny_train_overrides(tmp_path / "run", tiny_dataset,
                                     "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                     "trainer.max_epochs=2", "finetune=gradual_unfreeze",
                                     "finetune.unfreeze_epochs=[1]", "test=false",
                                     "lr_reference_batch=4")
    overrides = [o.replace("paths.output_dir", "hydra.run.dir") for o in overrides]
    result = subprocess.run([sys.executable, "-m", "vidtl.cli.train", *overrides],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not used" not in result.stderr and "unused" not in result.stderr.lower()
    assert (tmp_path / "run" / "metrics.json").is_file()
    # batch 4 per device x 2 processes: twice the reference batch, twice the learning rate
    # (AdamW, the default optimizer, at 1e-3)
    assert "learning rate 0.002 for the global batch of 8" in (tmp_path / "run" / "train.log"
                                                               ).read_text()
