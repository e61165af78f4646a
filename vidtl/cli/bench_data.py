"""``vidtl-bench-data data=...``: clips/s of the loader, its bare decoder loop and (on a GPU) the
model's training ceiling and end-to-end training, side by side."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from vidtl.cli import config_dir
from vidtl.cli.builders import build_classifier
from vidtl.cli.errors import exit_on_user_error
from vidtl.data.datamodule import VideoDataModule
from vidtl.data.sources import EncodedFrameStoreSource, FrameStoreSource
from vidtl.data.throughput import cycle, decoder_loop_rate, loader_rate
from vidtl.models.module import VideoClassificationModule
from vidtl.models.throughput import resident_batches, training_step_rate

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig, datamodule: VideoDataModule) -> VideoClassificationModule:
    classifier = build_classifier(cfg.model, len(datamodule.class_names), datamodule.num_frames)
    module = VideoClassificationModule(classifier, datamodule.class_names,
                                       batch_augment=datamodule.device_augment)
    if cfg.channels_last:  # as vidtl-train does it: weights and frames
        classifier.use_channels_last()
    if cfg.compile:
        classifier.backbone.compile()
    return module


def bench_data(cfg: DictConfig) -> dict[str, Any]:
    datamodule: VideoDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    dataset = datamodule.dataset(cfg.subset)
    loader = datamodule.dataloader(cfg.subset)
    # As many decoding processes as the loader has workers, or threads when it has none.
    parallel = datamodule.num_workers or datamodule.load_threads
    processes = cfg.decoder_processes or max(1, parallel)
    results: dict[str, Any] = {
        "source": datamodule.source,
        "workers": datamodule.num_workers,
        "load_threads": datamodule.load_threads,
        "decoder_processes": processes,
    }
    log.info("bare decoder loop: %d processes x %d clips", processes, cfg.clips)
    if isinstance(dataset.source, EncodedFrameStoreSource):  # the loop decodes, on the CPU
        dataset = copy.copy(dataset)
        dataset.source = FrameStoreSource(dataset.source.store_root, dataset.source.data_root)
    results["decoder_clips_per_s"] = decoder_loop_rate(dataset, cfg.clips, processes).clips_per_s
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if cfg.device == "auto" else cfg.device)
    training = cfg.subset == "train"

    def batches() -> Iterator[Any]:  # with decode_on=device, decoded on the device here
        for batch in cycle(loader):
            yield datamodule.decode_batch(batch, device, training)

    log.info("datamodule loader: %d workers, %d load threads, %d clips, decoding on the %s",
             datamodule.num_workers, datamodule.load_threads, cfg.clips, datamodule.decode_on)
    results["decode_on"] = datamodule.decode_on
    results["loader_clips_per_s"] = loader_rate(batches(), cfg.clips,
                                                max(1, loader.num_workers)).clips_per_s
    results["loader_over_decoder"] = results["loader_clips_per_s"] / results[
        "decoder_clips_per_s"]
    measure = cfg.measure_model
    if measure == "auto":
        measure = device.type == "cuda"
    if measure:
        precision = str(cfg.precision) if device.type == "cuda" else "32"
        module = build_module(cfg, datamodule)
        # The size the workers deliver, so the ceiling includes any device-side augmentation.
        resident = resident_batches(datamodule.batch_size, datamodule.num_frames,
                                    datamodule.train_clip_size, len(datamodule.class_names),
                                    device)
        log.info("model-only ceiling on %s (%s)", device, precision)
        ceiling = training_step_rate(module, resident, device, cfg.steps, cfg.warmup_steps,
                                     precision)
        log.info("end-to-end training from the loader")
        end_to_end = training_step_rate(module, batches(), device, cfg.steps,
                                        cfg.warmup_steps, precision)
        results |= {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "precision": precision,
            "model_clips_per_s": ceiling.clips_per_s,
            "train_clips_per_s": end_to_end.clips_per_s,
            "train_over_model": end_to_end.clips_per_s / ceiling.clips_per_s,
        }
    for key, value in results.items():
        print(f"{key:>22}: {value:.2f}" if isinstance(value, float) else f"{key:>22}: {value}")
    print(json.dumps(results), flush=True)
    return results


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench_data")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    bench_data(cfg)


if __name__ == "__main__":
    main()
