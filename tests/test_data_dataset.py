import numpy as np
import pytest
import torch
from helpers import make_video

from vidtl.cli.errors import one_line
from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.dataset import NoReadableVideoError, SkippedVideoLog, VideoClipDataset
from vidtl.data.clips.sampling import SegmentSampler
from vidtl.data.clips.transforms import EvalClipTransform, TrainClipTransform


def dataset(records, training=False, log=None):
    transform = TrainClipTransform(16) if training else EvalClipTransform(16, 16)
    return VideoClipDataset(records, SegmentSampler(4), transform, training, skipped=log)


def test_clip_is_uint8_tchw_and_eval_deterministic(tmp_path):
    records = [VideoRecord(make_video(tmp_path / f"{i}.avi", seed=i), i) for i in range(2)]
    data = dataset(records)
    clip, label = data[1]
    assert clip.shape == (4, 3, 16, 16) and clip.dtype == torch.uint8 and label == 1
    assert torch.equal(clip, data[1][0])


def test_time_window_restricts_frames(tmp_path):
    path = make_video(tmp_path / "v.avi", num_frames=50)  # 25 fps: 2 s
    data = dataset([VideoRecord(path, 0, start_sec=1.0, end_sec=2.0)])
    seen = []
    original = data.sampler

    def spy(length, training, rng):
        seen.append(length)
        return original(length, training, rng)

    data.sampler = spy
    data[0]
    assert seen == [25]


def test_broken_videos_are_replaced_and_logged(tmp_path):
    good = make_video(tmp_path / "good.avi")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    log = SkippedVideoLog(tmp_path / "run" / "skipped_videos.txt")
    records = [VideoRecord(empty, 0), VideoRecord(fake, 1), VideoRecord(good, 2)]
    data = dataset(records, training=True, log=log)
    for _ in range(3):
        for i in range(len(data)):
            clip, label = data[i]
            assert label == 2
    skipped = log.read()
    assert set(skipped) == {str(empty), str(fake)}
    assert "empty file" in skipped[str(empty)]
    assert log.compact() == 2
    assert len(log.path.read_text().splitlines()) == 2


def test_all_broken_raises(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"x")
    data = dataset([VideoRecord(bad, 0)])
    with pytest.raises(NoReadableVideoError, match="no readable video") as error:
        data[0]
    assert one_line(error.value) is not None  # a user error: one line, no traceback


def test_only_100_unreadable_videos_in_a_row_stop_a_run(tmp_path):
    """The README's rule: 99 unreadable videos in a row are skipped, the 100th stops."""
    good = VideoRecord(make_video(tmp_path / "good.avi"), 1)
    broken = []
    for i in range(100):
        (tmp_path / f"bad{i}.mp4").write_bytes(b"x")
        broken.append(VideoRecord(tmp_path / f"bad{i}.mp4", 0))
    clip, label = dataset([*broken[:99], good])[0]
    assert label == 1 and clip.shape == (4, 3, 16, 16)
    with pytest.raises(NoReadableVideoError, match="no readable video"):
        dataset([*broken, good])[0]


def test_training_sampling_varies(tmp_path):
    data = dataset([VideoRecord(make_video(tmp_path / "v.avi", num_frames=40), 0)], training=True)
    clips = [data[0][0] for _ in range(5)]
    assert any(not torch.equal(clips[0], c) for c in clips[1:])
    assert np.all([c.shape == (4, 3, 16, 16) for c in clips])
