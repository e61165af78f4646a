"""``data.source=stream``: whole batches of clips read from a shard store, shard by shard.

Each loader worker fetches the shards of its run of batches (:mod:`.epoch_plan`) one at a time,
checks each against the index (size and SHA-256), keeps the last two in memory and makes the
clips with the run's :class:`~vidtl.data.clips.pipeline.ClipPipeline`, exactly as from a frame
store. A shard that cannot be read or is damaged is listed in the run's skipped-videos log
with its URL and reason, and its samples are replaced by samples of a readable shard, so a
long run goes on with the same number of batches on every rank; ``data.on_decode_error=fail``
stops the run instead, naming the shard.
"""

from __future__ import annotations

import bisect
import io
import logging
import tarfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from vidtl.core.errors import UserError
from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.batches import ClipItem, ViewsItem
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.data.clips.skipped_videos import SkippedVideoLog
from vidtl.data.clips.transforms import ClipTransform
from vidtl.data.frames.frame_store import FrameStoreReader
from vidtl.data.frames.reader import VideoReader
from vidtl.data.shards.epoch_plan import Batch, EpochPlan, worker_runs
from vidtl.data.shards.shard_index import DamagedShardError, ShardInfo, read_shard
from vidtl.data.shards.storage import ShardAccessError, ShardStorage

log = logging.getLogger(__name__)

FRAMES_SUFFIX = ".frames"


class ShardReadError(UserError):
    """``data.on_decode_error=fail``: a shard could not be read, and the run stops."""


class StreamSource:
    """The frame source of ``data.source=stream``: frames come from shards, batch by batch,
    never from one video at a time."""

    def __init__(self, location: str) -> None:
        self.location = location

    def open(self, video: Path) -> VideoReader:
        raise UserError(f"data.source=stream reads whole shards ({self.location}), not single "
                        f"videos such as {video}: use data.source=video or frames for that")


class ShardFrames:
    """The frame files of one shard, in memory: a frame source for its videos."""

    def __init__(self, data: bytes, shard: ShardInfo, url: str) -> None:
        self.files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                members = {m.name: m for m in archive.getmembers() if m.isfile()}
                for position, video in enumerate(shard.videos):
                    member = members[f"{position:06d}{FRAMES_SUFFIX}"]
                    start = member.offset_data
                    self.files[video] = data[start:start + member.size]
        except (tarfile.TarError, KeyError, EOFError) as error:
            raise DamagedShardError(f"{url}: not a complete shard ({error})") from None
        self.url = url

    def open(self, video: Path) -> VideoReader:
        return FrameStoreReader.from_bytes(self.files[str(video)], f"{self.url}:{video}")


class ShardStreamDataset(IterableDataset):
    """The batches of one subset of a shard store for one rank (see the module docstring).

    ``start(epoch, consumed)`` (called in the main process before each pass) says which
    batches this pass delivers, through memory the workers share, so that they can persist
    from epoch to epoch with their shards; they split the pass with :func:`worker_runs`. Each
    element is the list of one batch's items (:class:`~vidtl.data.clips.batches.ClipItem`, or
    :class:`~vidtl.data.clips.batches.ViewsItem` for ``test``), which the loader's
    ``collate_fn`` collates in the worker.
    """

    def __init__(self, storage: ShardStorage, shards: list[ShardInfo], plan: EpochPlan,
                 pipeline: ClipPipeline, subset: str, skipped: SkippedVideoLog,
                 transform: ClipTransform | None = None, cached_shards: int = 2) -> None:
        self.storage = storage
        self.shards = shards
        self.plan = plan
        self.pipeline = pipeline
        self.subset = subset
        self.skipped = skipped
        self.transform = transform
        self.cached_shards = cached_shards
        self.records: list[VideoRecord] = [r for s in shards for r in s.records()]
        self.offsets = plan.offsets
        self.epoch = 0
        self._pass = self._pass_memory(plan)
        self._cache: OrderedDict[int, VideoClipDataset] = OrderedDict()
        self._damaged: set[int] = set()

    @staticmethod
    def _pass_memory(plan: EpochPlan) -> torch.Tensor:
        """The next pass, in memory shared with the loader's workers (which persist across
        epochs): its epoch, how many batches it skips, and their positions in the plan."""
        return torch.zeros(plan.num_batches + 2, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return self.plan.num_batches

    def replan(self, plan: EpochPlan) -> None:
        """Read the store with ``plan`` (another rank or world size); call it before the
        loader starts its workers."""
        self.plan = plan
        self._pass = self._pass_memory(plan)

    def start(self, epoch: int, consumed: list[int] | None = None) -> None:
        """The next pass reads epoch ``epoch`` but for the batches at plan positions
        ``consumed`` (those a checkpoint had consumed)."""
        consumed = list(consumed or [])
        self._pass[0], self._pass[1] = epoch, len(consumed)
        self._pass[2:2 + len(consumed)] = torch.tensor(consumed, dtype=torch.int64)

    @property
    def pass_batches(self) -> list[Batch]:
        """The batches the next pass delivers, in plan order."""
        epoch, skipped = int(self._pass[0]), int(self._pass[1])
        consumed = set(self._pass[2:2 + skipped].tolist())
        return [b for p, b in enumerate(self.plan.batches(epoch)) if p not in consumed]

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        self.epoch = int(self._pass[0])
        runs = worker_runs(self.pass_batches, info.num_workers if info else 1)
        for batch in runs[info.id if info else 0]:
            yield [self.item(number) for number in batch]

    def item(self, number: int) -> ClipItem | ViewsItem:
        """The clip (or test views) of global sample ``number``, with its label."""
        training = self.subset == "train"
        seed = [self.plan.seed, self.epoch, number] if training else [number]
        rng = np.random.default_rng(seed)
        shard = bisect.bisect_right(self.offsets, number) - 1
        clips = self.clips_of(shard)
        if clips is None:  # a damaged shard: a sample of a readable one instead
            shard, clips = self.substitute(shard)
            number = self.offsets[shard] + number % len(self.shards[shard])
        item = clips._load(number - self.offsets[shard], rng)
        if isinstance(item, ViewsItem):  # the video's number in the subset, not the shard
            return item._replace(video=self.offsets[shard] + item.video)
        return item

    def clips_of(self, shard: int) -> VideoClipDataset | None:
        """The clips of shard ``shard`` (fetched once, the last few kept), or ``None`` when it
        cannot be read."""
        if shard in self._cache:
            self._cache.move_to_end(shard)
            return self._cache[shard]
        if shard in self._damaged:
            return None
        info = self.shards[shard]
        url = self.storage.url(info.name)
        try:
            frames = ShardFrames(read_shard(self.storage, info), info, url)
        except ShardAccessError as error:
            if self.pipeline.on_decode_error == "fail":
                raise ShardReadError(f"{error} (data.on_decode_error=fail; replace or skip "
                                     f"keep the run going and list the shard)") from None
            self._damaged.add(shard)
            self.skipped.add(Path(url), f"damaged shard: {error}")
            return None
        clips = self.pipeline.dataset(info.records(), self.subset, self.skipped,
                                      transform=self.transform, source=frames)
        self._cache[shard] = clips
        while len(self._cache) > self.cached_shards:
            self._cache.popitem(last=False)
        return clips

    def substitute(self, damaged: int) -> tuple[int, VideoClipDataset]:
        """A readable shard to take samples from instead of ``damaged``: one in memory, else
        the next readable one."""
        if self._cache:
            shard = next(reversed(self._cache))
            return shard, self._cache[shard]
        count = len(self.shards)
        for step in range(1, count):
            shard = (damaged + step) % count
            if (clips := self.clips_of(shard)) is not None:
                return shard, clips
        raise ShardReadError(f"no readable shard in {self.storage.url('')} for {self.subset} "
                             f"(see the skipped-videos log)")
