"""Packing a frame store into shards (``vidtl-prepare mode=shards``).

A shard is a plain POSIX tar in the WebDataset layout: sample ``000017`` is the members
``000017.frames`` (the video's frame file, see :mod:`vidtl.data.frames.frame_store`) and
``000017.json`` (``{"video", "label", "class"}``), so ``tar``, WebDataset or any tar reader
opens it too. Training samples are written in a seeded random order (shuffled once, across the
whole dataset), so that a shard is a random draw of it. Members have fixed owners and times, so
a shard made again from the same frames is byte-identical: a second run after an interruption
rebuilds each shard locally and uploads only those the store does not hold yet. The index
(``shards.json``) is written last.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vidtl.core.atomic import atomic_path, write_text_atomic
from vidtl.core.errors import UserError
from vidtl.core.own_files import WouldReplaceError
from vidtl.data.annotations.records import VideoIndex, VideoRecord
from vidtl.data.shards.shard_index import INDEX_NAME, MAX_SHARD_BYTES, ShardIndex, ShardInfo
from vidtl.data.shards.storage import ShardAccessError, ShardStorage
from vidtl.data.shards.stream_dataset import FRAMES_SUFFIX

JSON_SUFFIX = ".json"


@dataclass
class ShardSummary:
    """What packing did: shards per subset, samples, bytes, and shards already in place."""

    location: str
    shards: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    already_there: int = 0
    left_out: int = 0  # videos without a frame file (their preparation failed)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mtime, member.mode = len(data), 0, 0o644
    archive.addfile(member, io.BytesIO(data))


def build_shard(path: Path, records: list[VideoRecord], frame_file: Callable[[Path], Path],
                class_names: list[str], video_name: Callable[[Path], str]) -> ShardInfo:
    """Write the tar of ``records`` to ``path``; return its index entry."""
    videos = [video_name(r.path) for r in records]
    with atomic_path(path, keep_suffix=True) as partial:
        with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as archive:
            for position, (record, video) in enumerate(zip(records, videos)):
                key = f"{position:06d}"
                _add(archive, key + FRAMES_SUFFIX, frame_file(record.path).read_bytes())
                meta = {"video": video, "label": record.label,
                        "class": class_names[record.label]}
                _add(archive, key + JSON_SUFFIX, json.dumps(meta).encode())
    data = path.read_bytes()
    if len(data) > MAX_SHARD_BYTES:
        raise UserError(f"{path}: a shard of {len(records)} videos takes {len(data) >> 20} MiB, "
                        f"more than the {MAX_SHARD_BYTES >> 30} GiB a reader holds in memory; "
                        f"lower shard_samples")
    return ShardInfo(path.name, videos, [r.label for r in records], len(data),
                     hashlib.sha256(data).hexdigest())


def shard_subsets(index: VideoIndex) -> dict[str, str]:
    """Each subset and the subset whose shards it shares (``test`` is ``val`` for UCF101,
    HMDB51 and SSv2, so it is written once)."""
    written: dict[str, str] = {}
    for name, records in index.subsets.items():
        if not records:
            continue
        same = next((other for other in written if written[other] == other
                     and [r.path for r in index.subsets[other]] == [r.path for r in records]),
                    None)
        written[name] = same or name
    return written


def write_shards(index: VideoIndex, frame_file: Callable[[Path], Path],
                 video_name: Callable[[Path], str], storage: ShardStorage, staging: Path,
                 shard_samples: int = 256, seed: int = 0,
                 settings: dict[str, Any] | None = None, progress: bool = True) -> ShardSummary:
    """Pack every subset of ``index`` into shards of ``shard_samples`` videos at ``storage``.

    ``frame_file(video)`` is the video's frame file (videos without one are left out);
    ``video_name(video)`` the name stored for it (its path relative to the dataset root).
    """
    if index.multilabel:
        raise UserError("a shard store keeps one label per video; this dataset is multi-label "
                        "(train from the videos, or a frame store: data.source=frames)")
    if shard_samples < 1:
        raise ValueError(f"shard_samples must be >= 1, got {shard_samples}")
    summary = ShardSummary(storage.url(""))
    present = storage.names()
    if INDEX_NAME in present:  # replaced at the end: only when it is a store's own index
        try:
            ShardIndex.read(storage)
        except ShardAccessError as error:
            raise WouldReplaceError(f"{storage.url(INDEX_NAME)} exists and is not a vidtl shard "
                                    f"index ({error}); vidtl replaces only its own files: "
                                    f"choose another output") from None
    staging.mkdir(parents=True, exist_ok=True)
    subsets: dict[str, list[ShardInfo]] = {}
    for subset, same in shard_subsets(index).items():
        if same != subset:
            subsets[subset] = subsets[same]
            continue
        records = [r for r in index.subsets[subset] if frame_file(r.path).is_file()]
        summary.left_out += len(index.subsets[subset]) - len(records)
        if subset == "train":
            random.Random(seed).shuffle(records)
        shards = []
        starts = range(0, len(records), shard_samples)
        for number, start in enumerate(tqdm(starts, desc=f"vidtl-prepare shards ({subset})",
                                            unit="shard", disable=not progress)):
            local = staging / f"{subset}-{number:05d}.tar"
            shard = build_shard(local, records[start:start + shard_samples], frame_file,
                                index.class_names, video_name)
            if shard.name in present:
                summary.already_there += 1
            else:
                storage.put(local, shard.name)
                summary.bytes_written += shard.bytes
            if Path(storage.url(shard.name)).resolve() != local.resolve():
                local.unlink()
            shards.append(shard)
        subsets[subset] = shards
        summary.shards[subset] = len(shards)
        summary.samples[subset] = len(records)
    shard_index = ShardIndex(index.class_names, subsets, settings or {})
    index_file = staging / INDEX_NAME
    write_text_atomic(index_file, shard_index.to_json())
    storage.put(index_file, INDEX_NAME)
    return summary
