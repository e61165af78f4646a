"""The frame store: round trip against direct decoding, reduced frame rates, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import make_video

from vidtl.data.annotations.index import load_index
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.sampling import SegmentSampler
from vidtl.data.clips.transforms import EvalClipTransform, TrainClipTransform
from vidtl.data.frames.decord_reader import DecordReader
from vidtl.data.frames.frame_store import FrameStoreReader, write_frame_file
from vidtl.data.frames.reader import VideoDecodeError
from vidtl.data.frames.sources import FrameStoreSource, VideoFileSource
from vidtl.data.tools.synthetic import write_video

JPEG_TOLERANCE = 4.0  # mean absolute difference in 0..255 levels that JPEG (quality 90) may add


def make_smooth_video(path, num_frames: int = 20, width: int = 96, height: int = 72):
    """A real encoded video with natural-image-like content (JPEG's error on noise is larger):
    a colour gradient with a bright square moving across it."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)
    for i in range(num_frames):
        left = 4 * i % (width - 16)
        frames[i, 20:36, left:left + 16] = 240
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=25, codec="mpeg4")
    return path


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_round_trip_equals_direct_decoding(tmp_path):
    video = make_smooth_video(tmp_path / "clip.avi")
    info = write_frame_file(video, tmp_path / "clip.avi.frames", short_side=None)
    store, direct = FrameStoreReader(tmp_path / "clip.avi.frames"), DecordReader(video)
    assert (len(store), store.fps, info.stored_frames) == (len(direct), direct.fps, 20)
    indices = np.array([0, 3, 3, 19, 7])  # repeats and any order, as samplers ask
    frames = store.get_frames(indices)
    assert frames.dtype == np.uint8 and frames.shape == (5, 72, 96, 3)
    assert mean_abs_diff(frames, direct.get_frames(indices)) < JPEG_TOLERANCE
    # Different frames really differ (the comparison above is not trivially satisfied).
    assert mean_abs_diff(frames[0], frames[3]) > JPEG_TOLERANCE


def test_short_side_resize_and_real_videos(shared_videos, tmp_path):
    for video in sorted(shared_videos.glob("*.mp4")) + sorted(shared_videos.glob("*.avi")):
        destination = tmp_path / (video.name + ".frames")
        info = write_frame_file(video, destination, short_side=128)
        direct = DecordReader(video)
        store = FrameStoreReader(destination)
        assert min(info.height, info.width) == 128, video.name
        assert len(store) == len(direct) and store.fps == pytest.approx(direct.fps), video.name
        frames = store.get_frames(np.array([0, len(direct) - 1]))
        assert frames.shape[1:] == (info.height, info.width, 3)


def test_reduced_frame_rate_keeps_source_indices(tmp_path):
    video = make_smooth_video(tmp_path / "clip.avi")  # 25 fps
    info = write_frame_file(video, tmp_path / "half.frames", short_side=None, fps=12.5)
    store, direct = FrameStoreReader(tmp_path / "half.frames"), DecordReader(video)
    assert info.frame_step == 2 and info.stored_frames == 10 and len(store) == 20
    indices = np.array([0, 2, 5, 14, 19])
    nearest = np.clip(np.rint(indices / 2).astype(int) * 2, 0, 18)
    assert mean_abs_diff(store.get_frames(indices), direct.get_frames(nearest)) < JPEG_TOLERANCE


def test_missing_and_corrupt_frame_files(tmp_path):
    with pytest.raises(VideoDecodeError, match="vidtl-prepare"):
        FrameStoreReader(tmp_path / "absent.frames")
    video = make_video(tmp_path / "clip.avi")
    write_frame_file(video, tmp_path / "clip.frames")
    data = (tmp_path / "clip.frames").read_bytes()
    (tmp_path / "cut.frames").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="not a complete vidtl frame file"):
        FrameStoreReader(tmp_path / "cut.frames")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty file"):
        write_frame_file(tmp_path / "empty.avi", tmp_path / "empty.frames")
    assert not list(tmp_path.glob(".*partial*"))  # no half-written file is left behind


def test_dataset_reads_the_same_clips_from_both_sources(tiny_dataset, tmp_path):
    records = load_index("ucf101", tiny_dataset).subsets["train"][:6]
    for record in records:
        destination = tmp_path / record.path.relative_to(tiny_dataset)
        write_frame_file(record.path, destination.with_name(destination.name + ".frames"))
    videos, frames = VideoFileSource(), FrameStoreSource(tmp_path, tiny_dataset)
    for record in records:
        assert len(videos.open(record.path)) == len(frames.open(record.path))
    for transform, training in ((TrainClipTransform(32, flip=True), True),
                                (EvalClipTransform(32, 40), False)):
        datasets = [VideoClipDataset(records, SegmentSampler(4), transform, training, source=s)
                    for s in (videos, frames)]
        for record in records:
            # The same generator state gives the same frame indices, crop and flip.
            clip_a, clip_b = (d.load_clip(record, np.random.default_rng(7)) for d in datasets)
            assert mean_abs_diff(clip_a.numpy(), clip_b.numpy()) < JPEG_TOLERANCE


def test_a_cut_video_reads_the_same_from_the_video_the_frame_store_and_a_shard(tmp_path):
    """Issue 24: the frame store mapped indices past a cut file's end to its last frame without
    a word (frames [0, 10, 39] came back as [0, 10, 20]), where the video readers raise
    "decoded 2 of 3 frames". Now the store (and a shard, which holds the same file) raises the
    same error, carrying the same replaced clip."""
    from test_data_decoding import _faststart_mp4_truncated

    from vidtl.data.frames.pyav_reader import PyAVReader
    from vidtl.data.frames.reader import PartialDecodeError

    cut = _faststart_mp4_truncated(tmp_path / "cut.mp4", 40)
    store = tmp_path / "cut.mp4.frames"
    info = write_frame_file(cut, store, short_side=None, quality=100)
    assert info.source_frames == 40 and info.decoded_frames < 40
    readers = {"video": PyAVReader(cut), "frames": FrameStoreReader(store),
               "shard": FrameStoreReader.from_bytes(store.read_bytes(), "shard:cut.mp4")}
    errors = {}
    for name, reader in readers.items():
        assert len(reader) == 40
        with pytest.raises(PartialDecodeError) as error:
            reader.get_frames(np.array([0, 10, 39]))
        errors[name] = error.value
    assert len({e.reason for e in errors.values()}) == 1, {n: e.reason for n, e in errors.items()}
    last = info.decoded_frames - 1
    for name, reader in readers.items():  # frame 39 holds the last decoded frame, in each
        assert np.array_equal(errors[name].frames[2], reader.get_frames(np.array([last]))[0])
    for name in ("frames", "shard"):  # the same frames (JPEG of noise: about 9 levels apart;
        for slot in range(3):           # two different frames of the clip: about 85)
            assert mean_abs_diff(errors[name].frames[slot], errors["video"].frames[slot]) < 20
    readers["frames"].get_frames(np.arange(info.decoded_frames))  # those that decoded: no error


def test_prepare_lists_the_videos_it_stored_in_part(tmp_path):
    from test_data_decoding import _faststart_mp4_truncated

    from vidtl.data.frames.prepared_folder import PrepareSettings
    from vidtl.data.tools.prepare import FAILURES, prepare_dataset

    root = tmp_path / "data"
    root.mkdir()
    cut = _faststart_mp4_truncated(root / "cut.mp4", 40)
    whole = make_video(root / "whole.avi")
    summary = prepare_dataset([cut, whole], root, tmp_path / "store", PrepareSettings(),
                              progress=False)
    assert summary.prepared == 2 and not summary.failed
    assert list(summary.partial) == [str(cut)] and "of 40 frames" in summary.partial[str(cut)]
    listed = (tmp_path / "store" / FAILURES).read_text()
    assert f"{cut}\tpartial\tdecoded" in listed and str(whole) not in listed  # prepared in part


def test_two_videos_never_share_a_frame_file(tmp_path):
    """Issue 24: a video outside the root went to ``_external/<absolute path>``, which a file
    inside the root could also be: one frame file served both videos (and both labels)."""
    from vidtl.core.errors import UserError
    from vidtl.data.frames.frame_store import relative_video_path
    from vidtl.data.frames.prepared_folder import PrepareSettings
    from vidtl.data.tools.prepare import prepare_dataset

    root = tmp_path / "data"
    outside = make_video(tmp_path / "elsewhere" / "clip.avi")
    old_scheme = make_video(root / "_external" / Path(*outside.parts[1:]), seed=1)
    assert relative_video_path(outside, root) != relative_video_path(old_scheme, root)
    twin = make_video(root / relative_video_path(outside, root), seed=2)  # made on purpose
    with pytest.raises(UserError, match="would share the prepared file"):
        prepare_dataset([outside, twin], root, tmp_path / "store", PrepareSettings(),
                        progress=False)
