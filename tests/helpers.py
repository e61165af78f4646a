"""Helpers for the tests: real encoded videos and tiny run settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vidtl.data.tools.synthetic import SyntheticVideoSpec, write_video

# A tiny synthetic dataset: 8 classes x 3 groups x 2 clips, 12 frames of 64x48.
TINY_SPEC = SyntheticVideoSpec(groups=3, clips_per_group=2, num_frames=12, width=64, height=48)


def make_video(path: Path, num_frames: int = 12, width: int = 64, height: int = 48,
               codec: str = "mpeg4", seed: int = 0) -> Path:
    """Write a real encoded video of random-ish frames (a moving gradient) to ``path``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 3 * i, axis=1) for i in range(num_frames)])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=25, codec=codec)
    return path


def tiny_train_overrides(tmp_path: Path, data_root: Path, *extra: str) -> list[str]:
    """Overrides that make a train run tiny: small clips, few batches, no workers."""
    return [
        f"paths.output_dir={tmp_path}",
        f"paths.data_dir={tmp_path / 'data'}",
        f"data.root={data_root}",
        "data.synthetic=null",
        "data.num_frames=2",
        "data.crop_size=32",
        "data.short_side=32",
        "data.batch_size=4",
        "data.num_workers=0",
        "data.persistent_workers=false",
        "data.pin_memory=false",
        "model/backbone=timm",
        "model.backbone.name=test_efficientnet",
        "model.backbone.pretrained=false",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "callbacks.progress_bar=null",
        *extra,
    ]


def compose_config(name: str, overrides: list[str]):
    """The config entry point ``name`` composes from ``overrides``, as on its command line."""
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def make_datamodule(root: Path, **options):
    """A data module built as the entry points build it: ``conf/data/base.yaml``'s keys with
    ``options`` applied."""
    from vidtl.assembly.data import build_datamodule, data_options

    return build_datamodule(data_options(root=root, **options))


def write_csv_lists(root: Path, folder: Path) -> tuple[Path, Path]:
    """``train.csv`` and ``val.csv`` (``path,label``, paths relative to ``root``) in ``folder``
    for the videos of a synthetic dataset at ``root``: group 3 is validation."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = sorted(root.rglob("*.avi"))
    lists = []
    for name, keep in (("train.csv", lambda v: "_g03_" not in v.name),
                       ("val.csv", lambda v: "_g03_" in v.name)):
        rows = [f"{v.relative_to(root)},{v.parent.name}\n" for v in videos if keep(v)]
        lists.append(folder / name)
        lists[-1].write_text("path,label\n" + "".join(rows))
    return lists[0], lists[1]


class LearningRateRecorder:
    """A Lightning callback (named by ``_target_`` in a test's overrides) that appends each
    training step's learning rates and weight decays to a JSON-lines file."""

    def __new__(cls, path: str):
        import json

        import lightning as L

        class Recorder(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                groups = trainer.optimizers[0].param_groups
                with open(path, "a") as file:
                    file.write(json.dumps({"step": trainer.global_step,
                                           "lr": [g["lr"] for g in groups],
                                           "weight_decay": [g["weight_decay"] for g in groups]})
                               + "\n")

        return Recorder()


def require_decoder(backend: str) -> None:
    """Skip the test when ``backend`` cannot run here (torchcodec without FFmpeg's libraries),
    naming what is missing; under CI=true fail instead (.ci/run installs FFmpeg)."""
    from vidtl.core.errors import UserError
    from vidtl.data.frames.decoders import check_decoder

    try:
        check_decoder(backend)
    except UserError as error:
        message = f"data.backend={backend} cannot run on this machine: {error}"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
