"""Batches built by threads of the main process (data.load_threads, ThreadedDataLoader)."""

import threading
import time

import pytest
import torch
from helpers import make_datamodule, make_video
from torch.utils.data import Dataset

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.dataset import SkippedVideoLog, VideoClipDataset
from vidtl.data.clips.sampling import SegmentSampler
from vidtl.data.clips.transforms import TrainClipTransform
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.threaded import ThreadedDataLoader


def batches(loader):
    return [(clips.clone(), labels.clone()) for clips, labels in loader]


def test_threaded_evaluation_delivers_the_same_batches(tiny_dataset):
    def datamodule(load_threads: int) -> VideoDataModule:
        return make_datamodule(tiny_dataset, num_frames=4, crop_size=32, short_side=32,
                               batch_size=4, num_workers=0, load_threads=load_threads)

    plain, threaded = datamodule(0).dataloader("val"), datamodule(2).dataloader("val")
    assert not isinstance(plain, ThreadedDataLoader) and isinstance(threaded, ThreadedDataLoader)
    expected, got = batches(plain), batches(threaded)
    assert len(expected) == len(got) > 1
    for (clips_a, labels_a), (clips_b, labels_b) in zip(expected, got, strict=True):
        assert torch.equal(clips_a, clips_b) and torch.equal(labels_a, labels_b)


def test_threaded_training_repeats_with_the_seed_and_varies_between_batches(tmp_path):
    records = [VideoRecord(make_video(tmp_path / f"{i}.avi", num_frames=40, seed=i), i)
               for i in range(4)]

    def draw() -> list[torch.Tensor]:
        torch.manual_seed(3)
        data = VideoClipDataset(records * 6, SegmentSampler(4), TrainClipTransform(16), True)
        loader = ThreadedDataLoader(data, batch_size=4, shuffle=True, threads=3)
        return [clips for clips, _ in loader]

    first, second = draw(), draw()
    assert len(first) == 6
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])


def test_threaded_loading_replaces_and_logs_broken_videos(tmp_path):
    good = make_video(tmp_path / "good.avi")
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    log = SkippedVideoLog(tmp_path / "skipped.txt")
    data = VideoClipDataset([VideoRecord(broken, 0), VideoRecord(good, 1)] * 3,
                            SegmentSampler(4), TrainClipTransform(16), True, skipped=log)
    labels = [label for _, batch in ThreadedDataLoader(data, batch_size=2, threads=2)
              for label in batch.tolist()]
    assert labels == [1] * 6
    assert set(log.read()) == {str(broken)}


def test_load_threads_replace_the_workers(tiny_dataset):
    with pytest.raises(ValueError, match="set data.num_workers=0"):
        make_datamodule(tiny_dataset, num_workers=2, load_threads=2)


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


class SlowNumbers(Numbers):
    """Items that take longer the smaller they are, so threads finish out of order."""

    threads: set[int] = set()

    def __getitem__(self, index: int) -> int:
        SlowNumbers.threads.add(threading.get_ident())
        time.sleep(0.002 * ((-index) % 5))
        return super().__getitem__(index)


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidtl-loader"]


def test_threaded_loader_keeps_order_raises_errors_and_stops_early():
    loader = ThreadedDataLoader(SlowNumbers(50), batch_size=3, threads=4)
    assert [x for batch in loader for x in batch.tolist()] == list(range(50))
    assert len(SlowNumbers.threads) > 1 and threading.get_ident() not in SlowNumbers.threads
    assert len(loader) == 17
    assert [b.tolist() for b in ThreadedDataLoader(Numbers(4), batch_size=2, drop_last=True,
                                                   threads=3)] == [[0, 1], [2, 3]]
    with pytest.raises(KeyError, match="no item 7"):
        list(ThreadedDataLoader(Numbers(10, fail_at=7), batch_size=3, threads=2))
    for _batch in ThreadedDataLoader(Numbers(1000), batch_size=2, threads=2):
        break  # each thread stops after at most its current batch
    deadline = time.monotonic() + 10
    while loader_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not loader_threads()
