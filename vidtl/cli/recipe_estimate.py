"""How long each recipe of ``vidtl-compare`` will take, measured on this machine before any starts.

Measured, a few seconds per recipe: a few training steps of each recipe's model on batches of
its own training loader, the workers decoding while the model computes as they do in
training (so a machine whose few cores the two share is measured as it will run), and the
share of a step a forward pass takes (for evaluation and for what a frozen backbone embeds).
The data is indexed once (the number of videos per split) and a few clips are decoded. The
estimate of a recipe is then

- decoded video (full fine-tuning, adapters): ``epochs x train batches x step`` plus the
  evaluation passes (validation every ``check_val_every_n_epoch``, and the test with its
  ``num_test_clips x num_test_crops`` views) at the forward pass's time per clip;
- cached features (``feature_cache.enabled``): one extraction of ``train_views`` clips per
  training video and one per validation video (once for the recipes that share a cache),
  then the head's epochs (on stored features: negligible), plus the test.

An estimate, not a promise: the first epoch of each run also opens the videos and builds the
worker processes, and other work on the machine slows every row.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.data import build_datamodule
from vidtl.assembly.training_data import feature_cache_key
from vidtl.data.loading.datamodule import VideoDataModule


@dataclass(frozen=True)
class DataCost:
    """What the data costs to read, measured once for all recipes."""

    train_videos: int
    val_videos: int
    test_videos: int
    decode_seconds: float  # one training clip, in one process (shown in the plan)
    batch_size: int


@dataclass(frozen=True)
class ModelCost:
    """What one recipe's model costs per batch on this machine."""

    step_seconds: float  # one batch: loading (the workers') + forward + backward + update
    forward_seconds: float  # one batch: loading + forward only


def subset_size(datamodule: VideoDataModule, subset: str) -> int:
    records = datamodule.index.subsets.get(subset)
    return len(records) if records else 0


def measure_data(cfg: DictConfig, clips: int = 5) -> DataCost:
    """Index the data of ``cfg`` and time decoding ``clips`` training clips."""
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    dataset = datamodule.dataset("train")
    durations = []
    for item in range(min(clips, len(dataset))):
        start = time.perf_counter()
        dataset[item]
        durations.append(time.perf_counter() - start)
    decode = sorted(durations)[len(durations) // 2] if durations else 0.0
    return DataCost(subset_size(datamodule, "train"), subset_size(datamodule, "val"),
                    subset_size(datamodule, "test"), decode,
                    datamodule.batch_size)


def measure_model(cfg: DictConfig, steps: int = 3) -> ModelCost:
    """Time training steps of the model ``cfg`` builds on batches of its own training loader
    (its workers decoding while the model computes, as in training; the first batch, which
    starts the workers, and those the workers had ready ahead are not counted), and the share
    of a step that a forward pass takes."""
    from vidtl.cli.train import build_training_module  # the train command's own builder

    datamodule = build_datamodule(cfg.data)
    on_gpu = torch.cuda.is_available() and str(cfg.trainer.get("accelerator")) != "cpu"
    device = torch.device("cuda" if on_gpu else "cpu")
    module = build_training_module(cfg, datamodule).to(device)
    trained = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=0.0) if trained else None
    module.train()

    def step(clips: torch.Tensor, labels: torch.Tensor) -> float:
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(module.forward_clips(clips), labels)
        if optimizer is not None and loss.requires_grad:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return finished(start, device)

    batches = iter(datamodule.train_dataloader())
    first = module.device_stage(next(batches), device, False, None)
    random_step = step(first.clips, labels_of(first.clips))  # also warms up
    with torch.no_grad():
        start = time.perf_counter()
        module.forward_clips(first.clips)
        forward_share = finished(start, device) / max(random_step, 1e-9)
    # The loader has batches ready ahead (its workers' prefetch): count only the steps after
    # those, when each batch waits for its decoding as in a long epoch.
    ahead = 2 * max(int(cfg.data.get("num_workers") or 0), 1) + 1
    timed: list[float] = []
    start = time.perf_counter()
    for batch in itertools.islice(batches, ahead + steps):
        batch = module.device_stage(batch, device, False, None)
        step(batch.clips, labels_of(batch.clips))
        timed.append(time.perf_counter() - start)
        start = time.perf_counter()
    steady = timed[ahead:] or timed  # a short epoch: whatever there was
    real_step = sum(steady) / max(len(steady), 1)
    del batches  # stop the loader's workers
    return ModelCost(real_step, real_step * min(forward_share, 1.0))


def labels_of(clips: torch.Tensor) -> torch.Tensor:
    """Class 0 for every clip of a batch (the timing needs a loss, not the true labels)."""
    return torch.zeros(len(clips), dtype=torch.long, device=clips.device)


def finished(start: float, device: torch.device) -> float:
    """Seconds since ``start`` once the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def estimated_minutes(cfg: DictConfig, data: DataCost, model: ModelCost,
                      extracted: bool = False) -> float:
    """The estimate of the module docstring, in minutes (``extracted``: an earlier recipe of
    the comparison fills the feature cache this one reads)."""
    eval_clip = model.forward_seconds / data.batch_size
    epochs = int(cfg.trainer.get("max_epochs") or 1)
    every = int(cfg.trainer.get("check_val_every_n_epoch") or 1)
    views = int(cfg.data.get("num_test_clips") or 1) * int(cfg.data.get("num_test_crops") or 1)
    test = data.test_videos * views * eval_clip if cfg.get("test", True) else 0.0
    cache = cfg.get("feature_cache") or {}
    if cache.get("enabled"):
        train_views = int(cache.get("train_views") or 1)
        extract = (train_views * data.train_videos + data.val_videos) * eval_clip
        return ((0.0 if extracted else extract) + test) / 60
    train_clip = model.step_seconds / data.batch_size
    validations = max(epochs // every, 1)
    seconds = (epochs * data.train_videos * train_clip
               + validations * data.val_videos * eval_clip + test)
    return seconds / 60


def cache_identity(cfg: DictConfig) -> str | None:
    """What a cached recipe's features depend on (equal for recipes that share one cache);
    ``None`` for a recipe that reads decoded video."""
    if not (cfg.get("feature_cache") or {}).get("enabled"):
        return None
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    return repr(feature_cache_key(plain["model"].get("backbone"), plain["data"], cfg.get("seed")))
