"""``vidtl-bench-data data=...``: clips/s of the loader, of its bare loop (the same work per clip
and batch without the loader), of decoding alone, and (on a GPU) the model's training ceiling
and end-to-end training, side by side."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from vidtl.assembly.data import build_datamodule
from vidtl.assembly.model import build_module
from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.cli.predict import select_device
from vidtl.core.custom_imports import import_custom
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.stream_datamodule import ShardStreamDataModule
from vidtl.data.tools.loader_rate import cycle, decoder_loop_rate, loader_rate
from vidtl.models.backbones import IMAGENET_MEAN, IMAGENET_STD
from vidtl.training.step_rate import resident_batches, training_step_rate

log = logging.getLogger(__name__)


def bench_data(cfg: DictConfig) -> dict[str, Any]:
    """Measure and print the loader, its bare decoder loop and (on a GPU) the model; the last
    line printed is the results as JSON."""
    import_custom(cfg.get("custom_imports"))
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    plan = datamodule.plan
    # As many decoding processes as the loader has workers, or threads when it has none.
    processes = cfg.decoder_processes or max(1, plan.num_workers or plan.load_threads)
    results: dict[str, Any] = {
        "source": str(cfg.data.source),
        "workers": plan.num_workers,
        "load_threads": plan.load_threads,
        "decoder_processes": processes,
        "decode_on": plan.decode_on,
        "augment_on": plan.augment_on,
    }
    log.info("bare loops: %d processes x %d clips", processes, cfg.clips)
    loaded = datamodule.dataset(cfg.subset)  # the loader's own dataset: its source, transform
    # The same work as the loader (decode, crop and flip, batch), without the loader.
    results["bare_loop_clips_per_s"] = decoder_loop_rate(
        loaded, cfg.clips, processes, work="load", batch_size=plan.batch_size).clips_per_s
    if not isinstance(datamodule, ShardStreamDataModule):
        # Decoding alone, on the CPU whatever the plan leaves to the device.
        decoding = datamodule.pipeline.dataset(loaded.records, cfg.subset)
        results["decoder_clips_per_s"] = decoder_loop_rate(decoding, cfg.clips,
                                                           processes).clips_per_s
    device = select_device(cfg.device)
    results |= measure_loader(cfg, datamodule, device)
    results["loader_over_bare_loop"] = (results["loader_clips_per_s"]
                                        / results["bare_loop_clips_per_s"])
    measure = device.type == "cuda" if cfg.measure_model == "auto" else cfg.measure_model
    if measure:
        results |= measure_model(cfg, datamodule, device)
    for key, value in results.items():
        print(f"{key:>22}: {value:.2f}" if isinstance(value, float) else f"{key:>22}: {value}")
    print(json.dumps(results), flush=True)
    return results


def measure_loader(cfg: DictConfig, datamodule: VideoDataModule,
                   device: torch.device) -> dict[str, Any]:
    """Clips/s of the loader, its batches brought to ``device`` as uint8 clips (decoded there
    with ``decode_on=device``); the crop, flip and normalisation that the device stage adds
    are the model measurement's part."""
    loader = datamodule.dataloader(cfg.subset)
    training = cfg.subset == "train"
    # Only the stage's first step runs here, so the normalisation constants do not matter.
    stage = datamodule.plan.device_stage(datamodule.pipeline, IMAGENET_MEAN, IMAGENET_STD)

    def batches() -> Iterator[Any]:
        for batch in cycle(loader):
            yield stage.to_device(batch, device, training)

    log.info("datamodule loader: %d workers, %d load threads, %d clips, decoding on the %s, "
             "augmenting on the %s", datamodule.plan.num_workers, datamodule.plan.load_threads,
             cfg.clips, datamodule.plan.decode_on, datamodule.plan.augment_on)
    rate = loader_rate(batches(), cfg.clips, max(1, loader.num_workers))
    results: dict[str, Any] = {"loader_clips_per_s": rate.clips_per_s}
    pool = getattr(loader, "batch_pool", None)
    if pool is not None and pool.pooled + pool.unpooled:  # batches handed over in reused memory
        results["pooled_batches"] = pool.pooled / (pool.pooled + pool.unpooled)
    return results


def measure_model(cfg: DictConfig, datamodule: VideoDataModule,
                  device: torch.device) -> dict[str, Any]:
    """The model-only training ceiling (resident batches) and end-to-end training from the
    loader, on ``device``."""
    precision = str(cfg.precision) if device.type == "cuda" else "32"
    module = build_module(cfg.model, datamodule.class_names, datamodule.num_frames,
                          datamodule=datamodule, channels_last=bool(cfg.channels_last),
                          compile=bool(cfg.compile))
    # The size the loader delivers, so the ceiling includes any device-side augmentation.
    resident = resident_batches(datamodule.batch_size, datamodule.num_frames,
                                datamodule.train_clip_size, len(datamodule.class_names), device)
    log.info("model-only ceiling on %s (%s)", device, precision)
    ceiling = training_step_rate(module, resident, device, cfg.steps, cfg.warmup_steps, precision)
    log.info("end-to-end training from the loader")
    end_to_end = training_step_rate(module, cycle(datamodule.dataloader("train")), device,
                                    cfg.steps, cfg.warmup_steps, precision)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "model_clips_per_s": ceiling.clips_per_s,
        "train_clips_per_s": end_to_end.clips_per_s,
        "train_over_model": end_to_end.clips_per_s / ceiling.clips_per_s,
    }


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench_data")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    bench_data(cfg)


if __name__ == "__main__":
    main()
