"""The index of a shard store (``shards.json``): the classes, and per subset its shards with
their samples (video, label), size and SHA-256.

It is written last by ``vidtl-prepare mode=shards``, so a store with an index is complete. The
stream reads everything it needs to plan an epoch from it, without opening a shard.

A store is shared, so its index is read as a file vidtl did not write: at most
``MAX_INDEX_BYTES``, every field of the type it must have, every shard name a plain file name
inside the store (never a path, ``..`` or a hidden file), every size bounded. A shard is read
(:func:`read_shard`) no further than the size its index gives, and hashed as its bytes arrive.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidtl.core.quoting import quote
from vidtl.data.annotations.formats import MAX_CLASSES
from vidtl.data.annotations.records import VideoRecord
from vidtl.data.shards.storage import (
    ObjectTooLargeError,
    ShardAccessError,
    ShardStorage,
    read_object,
)

INDEX_NAME = "shards.json"
INDEX_VERSION = 1
MAX_INDEX_BYTES = 256 * 2**20
MAX_SHARD_BYTES = 4 * 2**30  # a shard is held in memory (256 videos: a few hundred MiB)
FIELDS = {"name", "videos", "labels", "bytes", "sha256"}
SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ShardInfo:
    """One shard: its file name, its samples ``(video, label)`` in file order, size and hash."""

    name: str
    videos: list[str]
    labels: list[int]
    bytes: int
    sha256: str

    def __len__(self) -> int:
        return len(self.videos)

    def records(self) -> list[VideoRecord]:
        return [VideoRecord(Path(v), label) for v, label in zip(self.videos, self.labels)]

    @classmethod
    def from_fields(cls, fields: Any, num_classes: int, where: str) -> ShardInfo:
        """A shard entry of an index, checked field by field (a :class:`ShardAccessError`
        naming ``where`` otherwise)."""
        if not isinstance(fields, dict) or set(fields) != FIELDS:
            raise ShardAccessError(f"{where}: expected the fields {sorted(FIELDS)}")
        name, videos, labels = fields["name"], fields["videos"], fields["labels"]
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
            raise ShardAccessError(f"{where}: the shard name must be a plain file name inside "
                                   f"the store (letters, digits, '.', '_', '-')")
        if not isinstance(videos, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 4096 for v in videos):
            raise ShardAccessError(f"{where}: videos must be a list of names")
        if not isinstance(labels, list) or len(labels) != len(videos) or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < num_classes
                for x in labels):
            raise ShardAccessError(f"{where}: labels must be one class index (0..."
                                   f"{num_classes - 1}) per video")
        size, digest = fields["bytes"], fields["sha256"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_SHARD_BYTES:
            raise ShardAccessError(f"{where}: bytes must be a size up to {MAX_SHARD_BYTES}")
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            raise ShardAccessError(f"{where}: sha256 must be 64 hexadecimal digits")
        return cls(name, videos, labels, size, digest)


class DamagedShardError(ShardAccessError):
    """A shard's content is not what the index says (truncated, corrupt)."""


def read_shard(storage: ShardStorage, shard: ShardInfo) -> bytes:
    """The bytes of ``shard``, read no further than its size in the index and hashed as they
    arrive; a :class:`DamagedShardError` when they are not what the index says."""
    url = storage.url(shard.name)
    digest, chunks, total = hashlib.sha256(), [], 0
    try:
        for chunk in storage.chunks(shard.name, shard.bytes):
            digest.update(chunk)
            chunks.append(chunk)
            total += len(chunk)
    except ObjectTooLargeError:
        raise DamagedShardError(f"{url}: longer than the {shard.bytes} bytes the index says "
                                f"(replaced)") from None
    if total != shard.bytes:
        raise DamagedShardError(f"{url}: {total} bytes, the index says {shard.bytes} "
                                f"(truncated or replaced)")
    if digest.hexdigest() != shard.sha256:
        raise DamagedShardError(f"{url}: SHA-256 differs from the index (corrupt)")
    return b"".join(chunks)


@dataclass
class ShardIndex:
    """Everything a stream needs to plan epochs: classes and each subset's shards."""

    class_names: list[str]
    subsets: dict[str, list[ShardInfo]]
    settings: dict[str, Any] = field(default_factory=dict)
    version: int = INDEX_VERSION

    def records(self, subset: str) -> list[VideoRecord]:
        """The subset's samples in store order (shard after shard)."""
        return [r for shard in self.subsets.get(subset, []) for r in shard.records()]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def read(cls, storage: ShardStorage) -> ShardIndex:
        url = storage.url(INDEX_NAME)
        try:
            data = read_object(storage, INDEX_NAME, MAX_INDEX_BYTES)
        except ShardAccessError as error:
            if "does not exist" in str(error):
                raise ShardAccessError(
                    f"{error}: not a shard store, or an unfinished one (vidtl-prepare "
                    f"mode=shards writes {INDEX_NAME} last; run it again)") from None
            raise
        try:
            fields = json.loads(data)
        except (ValueError, RecursionError):
            raise ShardAccessError(f"{url}: not a vidtl shard index (not JSON)") from None
        if not isinstance(fields, dict):
            raise ShardAccessError(f"{url}: not a vidtl shard index (not a JSON object)")
        if fields.get("version") != INDEX_VERSION:
            raise ShardAccessError(f"{url}: shard store version {quote(fields.get('version'))}, "
                                   f"this vidtl reads version {INDEX_VERSION}")
        names, subsets = fields.get("class_names"), fields.get("subsets")
        if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES or not all(
                isinstance(n, str) and n.isprintable() for n in names):
            raise ShardAccessError(f"{url}: class_names must be a list of 1 to {MAX_CLASSES} "
                                   f"printable names")
        if not isinstance(subsets, dict) or not all(
                isinstance(shards, list) for shards in subsets.values()):
            raise ShardAccessError(f"{url}: subsets must map each subset to a list of shards")
        settings = fields.get("settings", {})
        return cls(names, {str(subset): [ShardInfo.from_fields(s, len(names),
                                                               f"{url}: {subset} shard {i}")
                                          for i, s in enumerate(shards)]
                           for subset, shards in subsets.items()},
                   settings if isinstance(settings, dict) else {})
