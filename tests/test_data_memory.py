"""Worker memory stays flat over 10,000 decoded clips (slow suite).

decord grows without bound when readers are kept open across clips; vidtl opens a reader per
clip and drops it, so a worker's resident memory stays where warm-up left it.
"""

from __future__ import annotations

import pytest
import torch
from helpers import compose_config
from torch.utils.data import DataLoader, Dataset

from vidtl.assembly.data import build_datamodule, data_options
from vidtl.cli.prepare import prepare
from vidtl.data.annotations.index import load_index
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.sampling import SegmentSampler
from vidtl.data.clips.transforms import TrainClipTransform
from vidtl.data.frames.prepared_folder import PrepareSettings
from vidtl.data.frames.sources import FrameStoreSource, VideoFileSource
from vidtl.data.shards.stream_dataset import ShardStreamDataset
from vidtl.data.tools.prepare import prepare_dataset

CLIPS, WARMUP = 10_000, 1_000


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


class ResidentMemoryAfterClip(Dataset):
    """Loads clip ``i`` of ``clips`` (cycling) and answers the worker's resident memory."""

    def __init__(self, clips: VideoClipDataset | ShardStreamDataset) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return CLIPS

    def __getitem__(self, index: int) -> float:
        if isinstance(self.clips, ShardStreamDataset):  # shards fetched, cached two at a time
            self.clips.item(index % len(self.clips.records))
        else:
            self.clips[index % len(self.clips)]
        return resident_mb()


@pytest.mark.slow
@pytest.mark.parametrize("source", ["video", "frames", "stream"])
def test_worker_memory_is_flat_over_10000_clips(tiny_dataset, tmp_path, source):
    records = load_index("ucf101", tiny_dataset).subsets["train"]
    frame_source = VideoFileSource()
    if source == "frames":
        prepare_dataset([r.path for r in records], tiny_dataset, tmp_path,
                        PrepareSettings(short_side=None), progress=False)
        frame_source = FrameStoreSource(tmp_path, tiny_dataset)
    clips = VideoClipDataset(records, SegmentSampler(4), TrainClipTransform(32), True,
                             source=frame_source)
    if source == "stream":  # 7 shards of 5 videos, two kept in memory: fetched again and again
        prepare(compose_config("prepare", [
            f"data.root={tiny_dataset}", "data.synthetic=null", "mode=shards",
            f"output={tmp_path / 'shards'}", "shard_samples=5", "short_side=null",
            "workers=1", "progress=false"]))
        clips = build_datamodule(data_options(
            root="unused", source="stream", shards=str(tmp_path / "shards"), num_frames=4,
            crop_size=32, num_workers=0)).dataset("train")
    loader = DataLoader(ResidentMemoryAfterClip(clips), batch_size=100, num_workers=1)
    memory = torch.cat([batch.double() for batch in loader])
    assert len(memory) == CLIPS
    after_warmup, peak = memory[WARMUP - 1].item(), memory[WARMUP:].max().item()
    growth = peak - after_warmup
    assert growth < 0.10 * after_warmup and growth < 64, (
        f"{source}: worker memory grew from {after_warmup:.0f} to {peak:.0f} MiB")
