"""Device-side augmentation: the same boxes as the worker transform, batched."""

from __future__ import annotations

import numpy as np
import torch
from helpers import make_datamodule, tiny_train_overrides
from hydra import compose, initialize_config_dir
from lightning import Callback, Trainer

from vidtl.assembly.model import build_module
from vidtl.cli import config_dir
from vidtl.cli.train import train
from vidtl.data.clips.transforms import CoverResizeTransform, TrainClipTransform
from vidtl.data.loading.device_stage import DeviceStage


def smooth_clips(batch: int, frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 clips of gradients (interpolation differences stay small on smooth images)."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    images = [torch.stack([x * 255 // width, y * 255 // height, (x + y + 7 * i) % 256])
              for i in range(batch * frames)]
    return torch.stack(images).to(torch.uint8).reshape(batch, frames, 3, height, width)


def test_full_frame_box_without_flip_is_the_identity():
    clips = smooth_clips(2, 3, 32, 32)
    stage = DeviceStage((0.0,) * 3, (1.0,) * 3, TrainClipTransform(32, "multi_scale", flip=False))

    class FullFrame:  # multi_scale draws scale 1.0 for both sides at position 0
        def integers(self, low, high=None):
            return 0

        def random(self):
            return 0.9

    out = stage.crop_and_flip(clips, FullFrame())
    assert out.dtype == torch.float32 and out.shape == (2, 3, 3, 32, 32)
    assert torch.allclose(out, clips.float(), atol=1e-3)


def test_matches_the_worker_transform_for_the_same_draws():
    clips = smooth_clips(4, 2, 48, 64)
    worker = TrainClipTransform(crop_size=24, crop="multi_scale", flip=True)
    device = DeviceStage((0.0,) * 3, (1.0,) * 3, TrainClipTransform(24, "multi_scale", flip=True))
    on_device = device.crop_and_flip(clips, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # both draw a box, then a flip, clip after clip
    for index in range(4):
        expected = worker(clips[index].permute(0, 2, 3, 1).numpy(), rng).float()
        assert (on_device[index] - expected).abs().mean() < 3.0, index
    flipped = [device.augment.random_box(48, 64, r) and device.augment.random_flip(r)
               for r in [np.random.default_rng(3)] for _ in range(4)]
    assert 0 < sum(flipped) < 4  # both branches were exercised


def test_cover_resize_gives_one_size_for_any_aspect():
    transform = CoverResizeTransform(32, 40)
    for shape in ((48, 64, 3), (64, 48, 3), (32, 40, 3), (90, 160, 3)):
        frames = np.random.default_rng(0).integers(0, 255, (2, *shape), dtype=np.uint8)
        out = transform(frames)
        assert out.dtype == torch.uint8 and out.shape == (2, 3, 32, 40), shape
    same = np.random.default_rng(0).integers(0, 255, (2, 32, 40, 3), dtype=np.uint8)
    assert torch.equal(transform(same), torch.from_numpy(same).permute(0, 3, 1, 2))


def test_datamodule_delivers_fixed_size_clips_and_training_runs(tiny_dataset, tmp_path):
    datamodule = make_datamodule(tiny_dataset, num_frames=2, crop_size=24, short_side=30,
                                 augment_on="device", num_workers=0, batch_size=4)
    assert datamodule.train_clip_size == (30, 40)  # 340x256's aspect
    clips, _ = next(iter(datamodule.train_dataloader()))
    assert clips.dtype == torch.uint8 and clips.shape == (4, 2, 3, 30, 40)
    clips, _ = next(iter(datamodule.val_dataloader()))
    assert clips.shape == (4, 2, 3, 24, 24)  # evaluation keeps the worker-side centre crop
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=tiny_train_overrides(
            tmp_path, tiny_dataset, "data.augment_on=device", "logger=none"))
    metrics = train(cfg)
    assert metrics["train_clips_per_s"] > 0 and "test/top1" in metrics


class StepRecorder(Callback):
    """The clip shape each training step receives, after the module's device stage."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.shapes.append(tuple(batch[0].shape))


def test_the_training_hook_crops_on_the_device(tiny_dataset, tmp_path):
    """Through Lightning's own transfer hook: the loader's 30x40 clips reach the training step
    as normalised 24x24 crops (the module's stage comes from the data module's loading plan)."""
    datamodule = make_datamodule(tiny_dataset, num_frames=2, crop_size=24, short_side=30,
                                 augment_on="device", num_workers=0, batch_size=4)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=tiny_train_overrides(tmp_path, tiny_dataset))
    module = build_module(cfg.model, datamodule.class_names, 2, datamodule=datamodule,
                          optimizer=torch.optim.SGD)
    assert module.device_stage.augment == datamodule.pipeline.train_transform
    recorder = StepRecorder()
    trainer = Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      callbacks=[recorder])
    trainer.fit(module, datamodule=datamodule)
    assert recorder.shapes == [(4, 2, 3, 24, 24)] * 2
