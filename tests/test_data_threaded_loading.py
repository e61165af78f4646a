"""Loading the clips of a batch in threads (data.load_threads) and the prefetching loader."""

import threading
import time

import pytest
import torch
from helpers import make_video
from torch.utils.data import DataLoader, Dataset

from vidtl.data.datamodule import VideoDataModule
from vidtl.data.dataset import SkippedVideoLog, VideoClipDataset
from vidtl.data.prefetch import PrefetchingDataLoader
from vidtl.data.records import VideoRecord
from vidtl.data.sampling import SegmentSampler
from vidtl.data.transforms import TrainClipTransform


def batches(loader):
    return [(clips.clone(), labels.clone()) for clips, labels in loader]


def test_threaded_evaluation_delivers_the_same_batches(tiny_dataset):
    def datamodule(load_threads: int) -> VideoDataModule:
        return VideoDataModule(tiny_dataset, num_frames=4, crop_size=32, short_side=32,
                               batch_size=4, num_workers=0, load_threads=load_threads)

    plain, threaded = datamodule(0).dataloader("val"), datamodule(2).dataloader("val")
    assert type(plain) is DataLoader and isinstance(threaded, PrefetchingDataLoader)
    expected, got = batches(plain), batches(threaded)
    assert len(expected) == len(got) > 1
    for (clips_a, labels_a), (clips_b, labels_b) in zip(expected, got, strict=True):
        assert torch.equal(clips_a, clips_b) and torch.equal(labels_a, labels_b)


def test_threaded_training_repeats_with_the_seed_and_varies_between_batches(tmp_path):
    records = [VideoRecord(make_video(tmp_path / f"{i}.avi", num_frames=40, seed=i), i)
               for i in range(4)]

    def draw() -> list[torch.Tensor]:
        torch.manual_seed(3)
        data = VideoClipDataset(records, SegmentSampler(4), TrainClipTransform(16), True,
                                load_threads=3)
        return [torch.stack([clip for clip, _ in data.__getitems__([0, 1, 2, 3, 0, 0])])
                for _ in range(3)]

    first, second = draw(), draw()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0][4], first[0][5])  # one video twice: two different clips


def test_threaded_loading_replaces_and_logs_broken_videos(tmp_path):
    good = make_video(tmp_path / "good.avi")
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    log = SkippedVideoLog(tmp_path / "skipped.txt")
    data = VideoClipDataset([VideoRecord(broken, 0), VideoRecord(good, 1)], SegmentSampler(4),
                            TrainClipTransform(16), True, skipped=log, load_threads=2)
    assert [label for _, label in data.__getitems__([0, 1, 0, 1])] == [1, 1, 1, 1]
    assert set(log.read()) == {str(broken)}


class Numbers(Dataset):
    """``0 .. length-1``; index ``fail_at`` raises."""

    def __init__(self, length: int, fail_at: int | None = None) -> None:
        self.length, self.fail_at = length, fail_at

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        if index == self.fail_at:
            raise KeyError(f"no item {index}")
        return index


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidtl-prefetch"]


def test_prefetching_loader_order_errors_and_early_exit():
    loader = PrefetchingDataLoader(Numbers(10), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert len(loader) == 4
    with pytest.raises(KeyError, match="no item 7"):
        list(PrefetchingDataLoader(Numbers(10, fail_at=7), batch_size=3))
    for _batch in PrefetchingDataLoader(Numbers(1000), batch_size=2):
        break  # the producer stops after at most its current batch
    deadline = time.monotonic() + 10
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not prefetch_threads()
