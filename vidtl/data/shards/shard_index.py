"""The index of a shard store (``shards.json``): the classes, and per subset its shards with
their samples (video, label), size and SHA-256.

It is written last by ``vidtl-prepare mode=shards``, so a store with an index is complete. The
stream reads everything it needs to plan an epoch from it, without opening a shard.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.shards.storage import ShardAccessError, ShardStorage

INDEX_NAME = "shards.json"
INDEX_VERSION = 1


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

    def check(self, data: bytes, url: str) -> None:
        """Raise :class:`DamagedShardError` when ``data`` is not this shard's content."""
        if len(data) != self.bytes:
            raise DamagedShardError(f"{url}: {len(data)} bytes, the index says {self.bytes} "
                                    f"(truncated or replaced)")
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise DamagedShardError(f"{url}: SHA-256 differs from the index (corrupt)")


class DamagedShardError(ShardAccessError):
    """A shard's content is not what the index says (truncated, corrupt)."""


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
            data = storage.read(INDEX_NAME)
        except ShardAccessError as error:
            if "does not exist" in str(error):
                raise ShardAccessError(
                    f"{error}: not a shard store, or an unfinished one (vidtl-prepare "
                    f"mode=shards writes {INDEX_NAME} last; run it again)") from None
            raise
        try:
            fields = json.loads(data)
            if fields.get("version") != INDEX_VERSION:
                raise ShardAccessError(f"{url}: shard store version {fields.get('version')}, "
                                       f"this vidtl reads version {INDEX_VERSION}")
            subsets = {name: [ShardInfo(**s) for s in shards]
                       for name, shards in fields["subsets"].items()}
            return cls(list(fields["class_names"]), subsets, fields.get("settings", {}))
        except (ValueError, KeyError, TypeError) as error:
            raise ShardAccessError(f"{url}: not a vidtl shard index ({error})") from None
