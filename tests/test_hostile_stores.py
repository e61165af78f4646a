"""Stores other people write: a shard store, a frame store, a prepared folder. A crafted one is
refused with one line, never read past its sizes, never blocks the loader, never names a file
outside itself."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import pytest
from helpers import compose_config

from vidtl.cli.prepare import prepare
from vidtl.data.frames.frame_store import MAGIC, FrameStoreReader, write_frame_file
from vidtl.data.frames.reader import VideoDecodeError
from vidtl.data.shards.shard_index import (
    INDEX_NAME,
    DamagedShardError,
    ShardIndex,
    read_shard,
)
from vidtl.data.shards.storage import ShardAccessError, open_storage


@pytest.fixture(scope="module")
def store(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile_shards") / "store"
    prepare(compose_config("prepare", [
        f"data.root={tiny_dataset}", "data.synthetic=null", "mode=shards", f"output={out}",
        "shard_samples=16", "short_side=32", "workers=1", "progress=false"]))
    return out


@pytest.fixture()
def copy(store, tmp_path) -> Path:
    return Path(shutil.copytree(store, tmp_path / "store", ignore=shutil.ignore_patterns("_*")))


def edit_index(folder: Path, edit) -> None:
    index = json.loads((folder / INDEX_NAME).read_text())
    edit(index)
    (folder / INDEX_NAME).write_text(json.dumps(index))


@pytest.mark.parametrize("name", ["/dev/zero", "../outside.tar", ".hidden", "a/b.tar", "",
                                  "..", "x" * 300])
def test_shard_names_must_be_plain_file_names_inside_the_store(name, copy, deadline):
    """Issue 23, attack 5: ``shards.json`` naming /dev/zero (read whole before its size was
    checked) or ``../`` (read outside the store)."""
    edit_index(copy, lambda index: index["subsets"]["train"][0].update(name=name))
    with pytest.raises(ShardAccessError, match="train shard 0: the shard name must be a plain"):
        ShardIndex.read(open_storage(copy))


@pytest.mark.parametrize("field, value, expected", [
    ("labels", "bad", "labels must be"), ("bytes", -5, "bytes must be"),
    ("bytes", 10**15, "bytes must be"), ("sha256", "abc", "sha256 must be"),
    ("videos", [{"a": 1}], "videos must be"), ("extra", 1, "expected the fields"),
])
def test_every_field_of_the_index_is_checked(field, value, expected, copy):
    edit_index(copy, lambda index: index["subsets"]["train"][0].update({field: value}))
    with pytest.raises(ShardAccessError, match=expected):
        ShardIndex.read(open_storage(copy))


def test_labels_out_of_range_and_a_nested_index_are_one_line(copy):
    edit_index(copy, lambda index: index["subsets"]["train"][0]["labels"].__setitem__(0, 99))
    with pytest.raises(ShardAccessError, match=r"one class index \(0...7\)"):
        ShardIndex.read(open_storage(copy))
    (copy / INDEX_NAME).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ShardAccessError, match="not a vidtl shard index"):
        ShardIndex.read(open_storage(copy))


def test_an_index_or_shard_larger_than_expected_is_refused_unread(copy, deadline):
    shard = ShardIndex.read(open_storage(copy)).subsets["train"][0]
    path = copy / shard.name
    with open(path, "ab") as file:
        file.truncate(200 * 2**20)  # 200 MiB past its end (sparse): a replaced shard
    started = time.monotonic()
    with pytest.raises(DamagedShardError, match="longer than the .* bytes the index says"):
        read_shard(open_storage(copy), shard)
    assert time.monotonic() - started < 2  # refused from its size, not read
    with open(copy / INDEX_NAME, "ab") as file:
        file.truncate(300 * 2**20)
    with pytest.raises(ShardAccessError, match="holds more than the 268435456 bytes"):
        ShardIndex.read(open_storage(copy))


def test_a_fifo_shard_is_skipped_without_blocking(copy, deadline):
    shard = ShardIndex.read(open_storage(copy)).subsets["train"][0]
    (copy / shard.name).unlink()
    os.mkfifo(copy / shard.name)
    with pytest.raises(ShardAccessError, match="FIFO"):
        read_shard(open_storage(copy), shard)
    (copy / INDEX_NAME).unlink()
    os.mkfifo(copy / INDEX_NAME)
    with pytest.raises(ShardAccessError, match="FIFO"):
        ShardIndex.read(open_storage(copy))


def test_a_changed_byte_is_found_as_the_shard_arrives(copy):
    shard = ShardIndex.read(open_storage(copy)).subsets["train"][0]
    data = bytearray((copy / shard.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / shard.name).write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match="SHA-256 differs"):
        read_shard(open_storage(copy), shard)


@pytest.fixture()
def frame_file(tiny_dataset, tmp_path) -> Path:
    video = next(tiny_dataset.rglob("*.avi"))
    destination = tmp_path / "store" / "video.avi.frames"
    write_frame_file(video, destination, short_side=32)
    return destination


def rewrite_metadata(path: Path, edit) -> None:
    data = path.read_bytes()
    length = struct.unpack("<Q", data[-16:-8])[0]
    metadata = json.loads(data[-16 - length:-16])
    edit(metadata)
    encoded = json.dumps(metadata).encode()
    path.write_bytes(data[:-16 - length] + encoded + struct.pack("<Q8s", len(encoded), MAGIC))


@pytest.mark.parametrize("field, value, expected", [
    ("width", 10**9, "width must be a number"), ("height", -1, "height must be"),
    ("source_frames", "many", "source_frames must be"),
    ("offsets", [8, 10**12], "offsets must rise within the file"),
    ("offsets", [8, 8], "offsets must rise"), ("quality", True, "quality must be"),
])
def test_frame_file_metadata_is_checked_before_memory_is_taken(field, value, expected,
                                                               frame_file):
    rewrite_metadata(frame_file, lambda metadata: metadata.update({field: value}))
    with pytest.raises(VideoDecodeError, match=expected):
        FrameStoreReader(frame_file)


def test_frame_files_that_are_not_regular_files_never_block(frame_file, deadline):
    """Issue 23, attack 7: a FIFO entry blocked vidtl-train in open() for good."""
    frame_file.unlink()
    os.mkfifo(frame_file)
    with pytest.raises(VideoDecodeError, match="FIFO"):
        FrameStoreReader(frame_file)
    frame_file.unlink()
    frame_file.symlink_to("/dev/zero")
    with pytest.raises(VideoDecodeError, match="character device"):
        FrameStoreReader(frame_file)


def test_class_names_of_a_store_are_bounded_and_printable(copy):
    edit_index(copy, lambda index: index.__setitem__("class_names", ["x"] * 200_000))
    with pytest.raises(ShardAccessError, match="1 to 100000 printable names"):
        ShardIndex.read(open_storage(copy))
    edit_index(copy, lambda index: index.__setitem__("class_names", ["\x1b[2J"] * 8))
    with pytest.raises(ShardAccessError, match="printable names"):
        ShardIndex.read(open_storage(copy))
