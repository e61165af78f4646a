"""``vidtl-prepare data=... mode=frames|reencode|shards output=DIR``: prepare a dataset for fast
reads (``mode=shards``: a shard store in a folder or at ``s3://bucket/prefix``)."""

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
from vidtl.data.frames.frame_store import frame_file_path, relative_video_path
from vidtl.data.shards.shard_writer import write_shards
from vidtl.data.shards.storage import open_storage
from vidtl.data.tools.prepare import PrepareSettings, PrepareSummary, prepare_dataset


def dataset_videos(index: VideoIndex) -> list[Path]:
    """Every video of every subset of the dataset, once each, in order."""
    return list(dict.fromkeys(r.path for records in index.subsets.values() for r in records))


def shard_staging(cfg: DictConfig) -> Path:
    """Where ``mode=shards`` keeps the frame files it packs: ``staging``, by default
    ``<output>/_staging`` (a folder) or ``./vidtl_shard_staging`` (S3)."""
    if cfg.get("staging"):
        return Path(cfg.staging).expanduser()
    if str(cfg.output).startswith("s3://"):
        return Path("vidtl_shard_staging")
    return Path(cfg.output).expanduser() / "_staging"


def prepare(cfg: DictConfig) -> PrepareSummary:
    """Prepare every video of ``cfg.data`` (resumable) and print the summary."""
    import_custom(cfg.get("custom_imports"))
    shards = cfg.mode == "shards"
    try:
        settings = PrepareSettings(mode="frames" if shards else cfg.mode,
                                   short_side=cfg.short_side, quality=cfg.quality, fps=cfg.fps,
                                   keyframe_interval=cfg.keyframe_interval, crf=cfg.crf)
    except ValueError as error:
        raise UserError(str(error).replace("one of ('frames', 'reencode')",
                                           "one of ('frames', 'reencode', 'shards')")) from None
    spec = dataset_spec(cfg.data)
    index = read_index(spec)
    videos = dataset_videos(index)
    storage = open_storage(cfg.output) if shards else None  # a bad URL fails before decoding
    frames = shard_staging(cfg) / "frames" if shards else Path(cfg.output).expanduser()
    summary = prepare_dataset(videos, spec.root, frames, settings,
                              workers=cfg.workers or os.cpu_count() or 1, progress=cfg.progress)
    print(summary, flush=True)
    if summary.failed and not summary.prepared and not summary.already_done:
        first, reason = next(iter(sorted(summary.failed.items())))
        raise UserError(f"vidtl-prepare: all {len(summary.failed)} videos failed, nothing was "
                        f"prepared (the first: {first}: {reason})")
    if storage is not None:
        packed = write_shards(
            index, lambda video: frame_file_path(frames, spec.root, video),
            lambda video: str(relative_video_path(video, spec.root)), storage,
            shard_staging(cfg), int(cfg.shard_samples), int(cfg.seed),
            settings=asdict(settings) | {"data_root": str(spec.root)}, progress=cfg.progress)
        print(f"packed {packed.samples} videos into {packed.shards} shards at "
              f"{packed.location} ({packed.bytes_written / 2**20:.1f} MiB uploaded, "
              f"{packed.already_there} shards already there, {packed.left_out} videos left "
              f"out)", flush=True)
        print(f"train on it with: data.source=stream data.shards={cfg.output}", flush=True)
    elif settings.mode == "frames":
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
