"""Odd but valid inputs: short and one-frame videos, paths with spaces and non-ASCII letters,
CSV lists with Windows line endings and a byte-order mark, variable frame rate, and a file
with audio only among the videos (skipped and listed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import make_video, require_decoder

from vidtl.assembly.data import build_datamodule, data_options
from vidtl.data.frames.decoders import VideoDecodeError, open_video


def write_vfr_video(path: Path, num_frames: int = 20) -> Path:
    """H.264 with irregular timestamps (gaps of 20 to 120 ms), as phone footage has."""
    import av

    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for _ in range(num_frames):
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += int(rng.integers(20, 120))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path) -> Path:
    """An .mp4 that holds one second of AAC audio and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(44):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def odd_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("odd") / "vidéos d'été"  # space, apostrophe, accents
    videos = {
        "normal clip.avi": lambda p: make_video(p, num_frames=24),
        "короткий.avi": lambda p: make_video(p, num_frames=3, seed=1),  # shorter than a clip
        "一帧.avi": lambda p: make_video(p, num_frames=1, seed=2),  # a single frame
        "vfr phone.mp4": write_vfr_video,
        "audio only.mp4": write_audio_only,
    }
    for name, write in videos.items():
        (root / "clips").mkdir(parents=True, exist_ok=True)
        write(root / "clips" / name)
    labels = ["ballet", "ballet", "boxing", "boxing", "ballet"]
    lines = ["path,label", *(f"clips/{n},{c}" for n, c in zip(videos, labels, strict=True))]
    for subset in ("train", "val"):  # UTF-8 with a byte-order mark and CRLF, as Excel saves
        (root / f"{subset}.csv").write_bytes("\r\n".join(lines).encode("utf-8-sig") + b"\r\n")
    return root


@pytest.mark.parametrize("backend", ["decord", "pyav", "torchcodec"])
def test_each_odd_video_decodes_with_every_backend(odd_dataset, backend):
    require_decoder(backend)
    for name, frames in (("короткий.avi", 3), ("一帧.avi", 1), ("vfr phone.mp4", 20)):
        reader = open_video(odd_dataset / "clips" / name, backend)
        assert len(reader) == frames, (backend, name)
        clip = reader.get_frames(np.minimum(np.arange(8), frames - 1))
        assert clip.shape == (8, 48, 64, 3)
    with pytest.raises(VideoDecodeError, match=r"no video stream \(audio only\?\)"):
        open_video(odd_dataset / "clips" / "audio only.mp4", backend)


def test_the_loader_reads_them_all_and_lists_the_audio_only_file(odd_dataset, tmp_path):
    data = data_options(root=odd_dataset, format="csv", train_list="train.csv",
                        val_list="val.csv", num_frames=8, crop_size=32, short_side=32,
                        batch_size=5, num_workers=0, pin_memory=False,
                        persistent_workers=False)
    datamodule = build_datamodule(data, tmp_path)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.class_names == ["ballet", "boxing"]
    dataset = datamodule.dataset("val")
    clips = [dataset[i] for i in range(len(dataset))]
    assert all(clip.shape == (8, 3, 32, 32) for clip, _ in clips)
    train_batch = next(iter(datamodule.train_dataloader()))
    assert tuple(train_batch[0].shape) == (5, 8, 3, 32, 32)
    listed = (tmp_path / "skipped_videos.txt").read_text()
    assert "audio only.mp4" in listed and "no video" in listed.lower(), listed
    assert datamodule.skipped.compact() == 1
    assert "normal clip.avi" not in listed and "короткий" not in listed
