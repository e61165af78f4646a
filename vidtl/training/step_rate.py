"""Measuring training speed: the model alone on resident batches, or fed by a data loader."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import torch

from vidtl.data.clips.batches import ClipBatch
from vidtl.data.tools.loader_rate import Rate
from vidtl.training.module import VideoClassificationModule

AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16, "32": None}


def resident_batches(batch_size: int, num_frames: int, size: tuple[int, int], num_classes: int,
                     device: torch.device) -> Iterator[ClipBatch]:
    """The same random uint8 batch of ``size`` (height, width) frames forever, already on
    ``device``: no data cost at all."""
    clips = torch.randint(0, 256, (batch_size, num_frames, 3, *size), dtype=torch.uint8,
                          device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    return itertools.repeat(ClipBatch(clips, labels))


def training_step_rate(
    module: VideoClassificationModule,
    batches: Iterator[ClipBatch],
    device: torch.device,
    steps: int = 30,
    warmup_steps: int = 5,
    precision: str = "32",
) -> Rate:
    """Clips per second of full training steps (the module's device stage: transfer, decode,
    crop and normalise as its plan says; then forward, loss, backward, SGD step) over
    ``steps`` steps after ``warmup_steps``."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {sorted(AUTOCAST_DTYPES)}, got {precision!r}")
    dtype = AUTOCAST_DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    module.to(device).train()
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1e-4,
                                momentum=0.9)
    clips_done, start = 0, time.perf_counter()
    for step in range(warmup_steps + steps):
        if step == warmup_steps:
            _synchronize(device)
            clips_done, start = 0, time.perf_counter()
        clips, labels = module.device_stage(next(batches), device, training=True,
                                            rng=module.augment_generator())
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = module.compute_loss(module(clips), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        clips_done += len(labels)
    _synchronize(device)
    return Rate(clips_done, time.perf_counter() - start)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
