"""data.decode_on=device: the workers hand over JPEG bytes, decoded before the transfer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import compose_config, make_datamodule, tiny_train_overrides

from vidtl.cli.prepare import prepare
from vidtl.cli.train import train
from vidtl.core.errors import UserError
from vidtl.data.clips.batches import ClipBatch
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.encoded_batches import EncodedClipBatch, decode_clip_batch


@pytest.fixture(scope="module")
def frame_store(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    prepare(compose_config("prepare", [f"data.root={tiny_dataset}", "data.synthetic=null",
                                       f"output={out}", "workers=1", "progress=false"]))
    return out


def datamodule(root, store, decode_on: str, **options) -> VideoDataModule:
    return make_datamodule(root, num_frames=4, crop_size=32, short_side=40, batch_size=4,
                           num_workers=0, source="frames", frames_root=store,
                           augment_on="device", decode_on=decode_on, **options)


def test_decoding_on_the_device_gives_the_workers_clips(tiny_dataset, frame_store):
    # Both in threads, so that the same seed gives the same frame indices in training.
    worker = datamodule(tiny_dataset, frame_store, "worker", load_threads=2)
    device = datamodule(tiny_dataset, frame_store, "device", load_threads=2)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    worker_stage = worker.plan.device_stage(worker.pipeline, mean, std)
    device_stage = device.plan.device_stage(device.pipeline, mean, std)
    for subset, training in (("val", False), ("train", True)):
        torch.manual_seed(0)  # the same frame indices in training
        expected = list(worker.dataloader(subset))
        torch.manual_seed(0)
        encoded = list(device.dataloader(subset))
        assert len(expected) == len(encoded) > 1
        for step, (plain, batch) in enumerate(zip(expected, encoded, strict=True)):
            assert isinstance(plain, ClipBatch) and isinstance(batch, ClipBatch)
            clips, labels = plain
            assert isinstance(batch[0], EncodedClipBatch) and batch[0].data.dtype == torch.uint8
            decoded = decode_clip_batch(batch[0], "cpu", device_stage.decode_train if training
                                        else device_stage.decode_eval)
            assert decoded.dtype == torch.uint8 and decoded.shape == clips.shape, subset
            assert torch.equal(decoded, clips), subset
            # The whole stage (decode, crop and flip, normalise) gives the worker path's result.
            ready, ready_labels = device_stage(batch, "cpu", training, np.random.default_rng(step))
            reference, _ = worker_stage(plain, "cpu", training,
                                        np.random.default_rng(step))
            assert ready.dtype == torch.float32 and torch.equal(ready, reference), subset
            assert torch.equal(ready_labels, labels), subset
    assert clips.shape[-2:] == worker.train_clip_size


def test_training_decodes_on_the_device(tiny_dataset, frame_store, tmp_path):
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "data.source=frames", f"data.frames_root={frame_store}",
        "data.augment_on=device", "data.decode_on=device", "logger=none")))
    assert metrics["skipped_videos"] == 0 and metrics["train_clips_per_s"] > 0


def test_decode_on_device_needs_the_frame_store_and_device_augmentation(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match="decode_on=device decodes .* needs data.source=frames"):
        make_datamodule(tiny_dataset, decode_on="device", augment_on="device")
    with pytest.raises(UserError, match="set data.augment_on=device with it"):
        make_datamodule(tiny_dataset, source="frames", frames_root=tmp_path, decode_on="device")
    with pytest.raises(UserError, match="data.decode_on must be one of"):
        make_datamodule(tiny_dataset, decode_on="gpu")
