import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import make_video, require_decoder

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.dataset import DecodeFailedError, VideoClipDataset
from vidtl.data.clips.sampling import SegmentSampler
from vidtl.data.clips.skipped_videos import SkippedVideoLog
from vidtl.data.clips.transforms import EvalClipTransform
from vidtl.data.frames.decoders import VideoDecodeError, open_video
from vidtl.data.frames.reader import PartialDecodeError
from vidtl.data.tools.synthetic import write_video

BACKENDS = ["decord", "pyav", "torchcodec"]
SHARED = {
    "kinetics_demo_340x256.mp4": (280, 256, 340),
    "test_340x256.mp4": (300, 256, 340),
    "short_32frames_340x256.mp4": (32, 256, 340),
    "ava_demo_340x256.mp4": (57, 256, 340),
    "ucf_style_320x240_mpeg4.avi": (164, 240, 320),
    "ntu_1920x1080.avi": (103, 1080, 1920),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(SHARED))
def test_real_clips(shared_videos, name, backend):
    require_decoder(backend)
    frames, height, width = SHARED[name]
    reader = open_video(shared_videos / name, backend)
    assert len(reader) == frames
    assert reader.fps > 0
    indices = np.array([0, frames // 2, frames - 1, frames // 2])
    clip = reader.get_frames(indices)
    assert clip.shape == (4, height, width, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip[1], clip[3])  # the same frame asked twice
    assert clip.std() > 5  # real content, not a blank frame


def test_backends_agree_on_real_clip(shared_videos):
    path = shared_videos / "ucf_style_320x240_mpeg4.avi"
    indices = np.array([3, 50, 120])
    a = open_video(path, "decord").get_frames(indices).astype(int)
    b = open_video(path, "pyav").get_frames(indices).astype(int)
    assert np.abs(a - b).mean() < 3  # same frames (colour conversion may differ by rounding)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_indices_are_clamped(tmp_path, backend):
    require_decoder(backend)
    path = make_video(tmp_path / "v.avi", num_frames=10)
    reader = open_video(path, backend)
    clip = reader.get_frames(np.array([0, 9, 15, -3]))
    assert clip.shape[0] == 4
    assert np.array_equal(clip[1], clip[2]) and np.array_equal(clip[0], clip[3])


def _faststart_mp4_truncated(path: Path, num_frames: int) -> Path:
    """An H.264 mp4 with its index up front, cut short: the header promises missing frames."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "4", "crf": "18"}
        for _ in range(num_frames):
            frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_header_overstating_frame_count_is_reported_with_the_replaced_clip(tmp_path, backend):
    require_decoder(backend)
    path = _faststart_mp4_truncated(tmp_path / "cut.mp4", 40)
    reader = open_video(path, backend)
    # frame 0 always decodes and frame 39 never; decord2 decodes frame 10 of the cut file or not
    with pytest.raises(PartialDecodeError, match=r"cut.mp4: decoded [12] of 3 frames") as error:
        reader.get_frames(np.array([0, 10, 39]))
    clip = error.value.frames
    assert clip.shape == (3, 48, 64, 3)
    assert pickle.loads(pickle.dumps(error.value)).reason == error.value.reason


@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
def test_a_failed_batch_read_is_logged_once_before_the_slow_path(tmp_path, backend, caplog):
    """The readers that read a clip's frames together fall back to a slower path when that
    fails; the batch error is logged first (once per reader), naming the video."""
    require_decoder(backend)
    path = _faststart_mp4_truncated(tmp_path / "cut.mp4", 40)
    reader = open_video(path, backend)
    with caplog.at_level(logging.DEBUG, logger=f"vidtl.data.frames.{backend}_reader"):
        for _ in range(2):
            with pytest.raises(PartialDecodeError):
                reader.get_frames(np.array([0, 10, 39]))
    logged = [r.getMessage() for r in caplog.records if r.name.endswith(f"{backend}_reader")]
    assert len(logged) == 1, logged
    assert str(path) in logged[0]
    assert "Error sending packet" in logged[0] or "Invalid data" in logged[0]  # FFmpeg's error


@pytest.mark.parametrize("policy", ["replace", "skip", "fail"])
def test_on_decode_error_policies(tmp_path, policy):
    """A clip that decodes in part is kept and listed (replace), or its video is skipped and
    listed (skip), or the run stops naming the file (fail)."""
    cut = _faststart_mp4_truncated(tmp_path / "cut.mp4", 40)
    good = make_video(tmp_path / "good.mp4", num_frames=40)
    log = SkippedVideoLog(tmp_path / "skipped_videos.txt")
    dataset = VideoClipDataset([VideoRecord(cut, 0), VideoRecord(good, 1)],
                               SegmentSampler(8), EvalClipTransform(32, 32), training=False,
                               skipped=log, on_decode_error=policy)
    if policy == "fail":
        with pytest.raises(DecodeFailedError, match=r"cut.mp4: decoded \d of 8 frames"):
            dataset[0]
        return
    clip, label = dataset[0]
    assert clip.shape == (8, 3, 32, 32)
    assert label == (0 if policy == "replace" else 1)
    dataset[0]  # listed once, however often it is read
    lines = (tmp_path / "skipped_videos.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(cut)) and "of 8 frames" in lines[0]
    assert (log.compact(), log.replaced()) == ((0, 1) if policy == "replace" else (1, 0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_files_raise_decode_errors(tmp_path, backend):
    require_decoder(backend)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 50)
    good = make_video(tmp_path / "good.mp4", codec="h264", num_frames=20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # index (moov) is at the end
    for path in (empty, text, cut, tmp_path / "absent.mp4"):
        with pytest.raises(VideoDecodeError, match=path.name):
            open_video(path, backend).get_frames(np.arange(4))


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="unknown decoder backend"):
        open_video(tmp_path / "x.mp4", "opencv")


def test_write_video_round_trip(tmp_path):
    frames = np.zeros((5, 32, 48, 3), dtype=np.uint8)  # a size decord2 3.4 decodes wrongly
    frames[:, :, :24] = 200
    write_video(tmp_path / "a.mp4", frames, fps=10, codec="h264")
    reader = open_video(tmp_path / "a.mp4")
    assert len(reader) == 5 and reader.fps == pytest.approx(10)
    clip = reader.get_frames(np.arange(5)).astype(int)
    assert clip.shape == (5, 32, 48, 3)
    assert abs(clip[:, :, :20].mean() - 200) < 10 and clip[:, :, 28:].mean() < 10


def test_a_missing_torchcodec_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    from vidtl.cli.errors import one_line

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # import fails as if absent
    path = make_video(tmp_path / "v.mp4", codec="h264")
    with pytest.raises(Exception) as error:
        open_video(path, "torchcodec")
    message = one_line(error.value)
    assert message is not None and "pip install 'vidtl[torchcodec]'" in message
    assert "apt-get install ffmpeg" in message


def test_a_tiny_run_trains_on_torchcodec(tiny_dataset, tmp_path):
    require_decoder("torchcodec")
    from helpers import compose_config, tiny_train_overrides

    from vidtl.cli.train import train

    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "data.backend=torchcodec", "test=false", "logger=none")))
    assert metrics["skipped_videos"] == 0 and np.isfinite(metrics["val/loss"])


def test_missing_ffmpeg_libraries_stop_a_torchcodec_run_at_start(tiny_dataset, tmp_path,
                                                                 monkeypatch):
    """Issue 24: without FFmpeg's shared libraries every video was listed as broken and the run
    ended on a RuntimeError from a worker; now the run stops before training with one line."""
    pytest.importorskip("torchcodec._internally_replaced_utils")
    import torchcodec._internally_replaced_utils as native
    from helpers import compose_config, tiny_train_overrides

    from vidtl.cli.errors import one_line
    from vidtl.cli.train import train
    from vidtl.data.frames.torchcodec_reader import TorchCodecUnavailableError

    def missing(*args, **kwargs):
        raise RuntimeError("Could not load libtorchcodec.\nlibavutil.so.59: cannot open shared "
                           "object file: No such file or directory")

    monkeypatch.setattr(native, "load_core_libraries", missing)
    config = compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "data.backend=torchcodec", "test=false", "logger=none"))
    with pytest.raises(TorchCodecUnavailableError) as error:
        train(config)
    message = one_line(error.value)
    assert message is not None and "\n" not in message
    assert "apt-get install ffmpeg" in message and "Could not load libtorchcodec" in message
    assert not list(tmp_path.rglob("*.ckpt")), "no training step may have run"


@pytest.mark.parametrize("backend, package", [("decord", "decord"), ("pyav", "av"),
                                              ("torchcodec", "torchcodec.decoders")])
def test_each_decoder_is_checked_before_any_video_is_read(backend, package, tiny_dataset,
                                                          tmp_path, monkeypatch):
    """Issue 24: a decoder that cannot load stops the run at its start with one line naming what
    to install (a partial with options, as for NVDEC, is checked too)."""
    import functools
    import sys

    from helpers import make_datamodule

    from vidtl.cli.errors import one_line
    from vidtl.data.frames.decoders import check_decoder, resolve_decoder
    from vidtl.data.frames.reader import DecoderUnavailableError

    monkeypatch.setitem(sys.modules, package, None)  # the import fails as if not installed
    with pytest.raises(DecoderUnavailableError) as error:
        check_decoder(functools.partial(resolve_decoder(backend)))
    assert "pip install" in one_line(error.value) and "\n" not in one_line(error.value)
    with pytest.raises(DecoderUnavailableError):  # when the data module is built
        make_datamodule(tiny_dataset, backend=backend)
