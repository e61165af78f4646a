"""``vidtl-prepare data=... mode=frames|reencode output=DIR``: prepare a dataset for fast reads."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vidtl.assembly.data import dataset_spec
from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.core.custom_imports import import_custom
from vidtl.core.errors import UserError
from vidtl.data.annotations.index import read_index
from vidtl.data.annotations.records import VideoIndex
from vidtl.data.tools.prepare import PrepareSettings, PrepareSummary, prepare_dataset


def dataset_videos(index: VideoIndex) -> list[Path]:
    """Every video of every subset of the dataset, once each, in order."""
    return list(dict.fromkeys(r.path for records in index.subsets.values() for r in records))


def prepare(cfg: DictConfig) -> PrepareSummary:
    """Prepare every video of ``cfg.data`` (resumable) and print the summary."""
    import_custom(cfg.get("custom_imports"))
    try:
        settings = PrepareSettings(mode=cfg.mode, short_side=cfg.short_side,
                                   quality=cfg.quality, fps=cfg.fps,
                                   keyframe_interval=cfg.keyframe_interval, crf=cfg.crf)
    except ValueError as error:
        raise UserError(str(error)) from None
    spec = dataset_spec(cfg.data)
    videos = dataset_videos(read_index(spec))
    summary = prepare_dataset(videos, spec.root, Path(cfg.output).expanduser(), settings,
                              workers=cfg.workers or os.cpu_count() or 1, progress=cfg.progress)
    print(summary, flush=True)
    if settings.mode == "frames":
        print(f"train on it with: data.source=frames data.frames_root={cfg.output}", flush=True)
    else:
        print(f"train on it with: data.root={cfg.output}", flush=True)
    print(json.dumps({k: v for k, v in asdict(summary).items() if k != "failed"}
                     | {"failed": len(summary.failed)}), flush=True)
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="prepare")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
