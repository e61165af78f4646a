"""Live sources: a real stream served on localhost by FFmpeg, a pipe, a stall, SIGTERM, and
windows dropped (never queued) when the model falls behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from timeline_videos import write_long_video

from vidtl.data.clips.sampling import SegmentSampler
from vidtl.timeline.frame_streams import ArrayFrameStream, SourceInfo
from vidtl.timeline.scoring_loop import LIVE_QUEUE, TimelineStats, score_windows
from vidtl.timeline.window_plan import WindowPlan


@pytest.fixture(autouse=True)
def ffmpeg_command():
    """The ffmpeg command line serves the streams: skipped without it, except under CI=true
    (.ci/run installs it), where its absence fails the test."""
    if shutil.which("ffmpeg") is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI=true: the ffmpeg command line is not installed")
        pytest.skip("the ffmpeg command line serves the streams (apt-get install ffmpeg)")


SCENES = [("red", 3), ("green", 3), ("blue", 3)]


@pytest.fixture(scope="module")
def stream_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "scenes.mp4"
    write_long_video(path, SCENES)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ffmpeg(*arguments: str, **options) -> subprocess.Popen:
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", *arguments],
                            **options)


def predict_command(checkpoint: Path, source: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vidtl.cli.predict", f"ckpt_path={checkpoint}",
            f"input={source}", "mode=timeline", f"output_dir={out}", "output=json",
            "timeline.window_s=2", "progress=false", *extra]


def json_lines_with_times(process: subprocess.Popen) -> list[tuple[float, dict]]:
    lines = []
    for line in process.stdout:
        lines.append((time.monotonic(), json.loads(line)))
    return lines


def complete_files(out: Path) -> tuple[list[dict], list[dict]]:
    with open(out / "timeline.csv", newline="") as file:
        windows = list(csv.DictReader(file))
    with open(out / "segments.csv", newline="") as file:
        segments = list(csv.DictReader(file))
    assert segments and float(segments[-1]["end_s"]) >= float(windows[-1]["end_s"]) - 1e-6
    return windows, segments


def test_a_localhost_stream_is_scored_live_and_stops_at_its_end(tiny_checkpoint, stream_video,
                                                                tmp_path):
    port = free_port()
    server = ffmpeg("-re", "-i", str(stream_video), "-c", "copy", "-f", "mpegts", "-listen",
                    "1", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        process = subprocess.Popen(predict_command(tiny_checkpoint, f"http://127.0.0.1:{port}",
                                                   tmp_path), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        lines = json_lines_with_times(process)
        stderr = process.communicate(timeout=120)[1]
    finally:
        server.kill()
    assert process.returncode == 0, stderr[-2000:]
    assert len(lines) >= 5
    # scored as the stream plays (-re: real time), not after it ended
    first_at = lines[0][0] - started
    last_at = lines[-1][0] - started
    assert last_at - first_at > 3, (first_at, last_at)
    assert all(0 <= line["latency_s"] < 5 for _, line in lines)  # (the benchmark times it)
    windows, _ = complete_files(tmp_path)
    assert len(windows) == len(lines)
    assert (tmp_path / f"127.0.0.1_{port}_timeline.png").exists()


def test_a_pipe_on_stdin_is_scored(tiny_checkpoint, stream_video, tmp_path):
    source = ffmpeg("-re", "-i", str(stream_video), "-c", "copy", "-f", "mpegts", "-",
                    stdout=subprocess.PIPE)
    try:
        result = subprocess.run(predict_command(tiny_checkpoint, "-", tmp_path),
                                stdin=source.stdout, capture_output=True, text=True,
                                timeout=120)
    finally:
        source.kill()
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 5 and lines[0]["video"] == "stdin"
    complete_files(tmp_path)
    assert (tmp_path / "stdin_timeline.png").exists()


def test_sigterm_stops_cleanly_with_the_files_complete(tiny_checkpoint, stream_video, tmp_path):
    port = free_port()
    looped = ffmpeg("-re", "-stream_loop", "-1", "-i", str(stream_video), "-c", "copy", "-f",
                    "mpegts", "-listen", "1", f"http://127.0.0.1:{port}")
    try:
        process = subprocess.Popen(predict_command(tiny_checkpoint, f"http://127.0.0.1:{port}",
                                                   tmp_path), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        seen = [process.stdout.readline() for _ in range(3)]  # three windows scored
        process.send_signal(signal.SIGTERM)
        rest, stderr = process.communicate(timeout=60)
    finally:
        looped.kill()
    assert process.returncode == 0, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr
    windows, _ = complete_files(tmp_path)
    assert len(windows) == len(seen) + len(rest.splitlines())
    assert list((tmp_path).glob("*_timeline.png"))


def test_a_stalled_stream_ends_with_one_line(tiny_checkpoint, stream_video, tmp_path):
    data = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(stream_video), "-c", "copy",
                           "-f", "mpegts", "-"], capture_output=True, check=True).stdout
    process = subprocess.Popen(predict_command(tiny_checkpoint, "-", tmp_path,
                                               "timeline.stall_timeout_s=2", "timeline.live=false"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=False)
    process.stdin.write(data[: len(data) // 2])  # half the stream, then nothing: a stall
    process.stdin.flush()
    started = time.monotonic()
    try:
        process.wait(timeout=60)  # stdin stays open: no end of stream
    finally:
        process.kill()
    assert time.monotonic() - started < 30
    stderr = process.stderr.read()
    assert process.returncode != 0, "a stall is not the end of a stream: its exit says so"
    assert process.stdout.read().count(b"\n") >= 2  # the windows before the stall
    stall = [line for line in stderr.decode().splitlines() if "no frame for" in line]
    assert len(stall) == 1, stderr.decode()[-2000:]
    assert "timeline.stall_timeout_s" in stall[0]
    complete_files(tmp_path)


def test_windows_are_dropped_not_queued_when_the_model_falls_behind():
    class LiveFrames(ArrayFrameStream):
        def open(self) -> SourceInfo:
            self.info = SourceInfo("live", "live", live=True, fps=50.0)
            return self.info

        def frames(self):
            for frame in super().frames():
                time.sleep(1 / 50)  # frames arrive in real time
                yield frame

    def slow_scorer(clips: torch.Tensor) -> torch.Tensor:
        time.sleep(0.25)  # 4 windows a second, against 10 arriving
        return torch.ones(len(clips), 2) / 2

    frames = [np.zeros((8, 8, 3), dtype=np.uint8)] * 150  # 3 s at 50 fps
    plan = WindowPlan(SegmentSampler(2), fps=50.0, window_s=0.2, stride_s=0.1)
    stats = TimelineStats()
    scores = list(score_windows(LiveFrames(frames, 50.0), lambda info: plan,
                                lambda f: torch.from_numpy(f).permute(2, 0, 1), slow_scorer,
                                stats=stats))
    assert stats.dropped > 5
    assert len(scores) + stats.dropped == 29  # every window scored or counted as dropped
    # the scores stay current: at most LIVE_QUEUE windows wait, each scored in 0.25 s
    assert max(s.latency_s for s in scores) < (LIVE_QUEUE + 1) * 0.25 + 0.3


def test_a_fragmented_mp4_is_read_to_its_end(tiny_checkpoint, stream_video, tmp_path):
    """Its header counts the frames of the first fragment only."""
    fragmented = tmp_path / "fragmented.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(stream_video), "-c", "copy",
                    "-movflags", "frag_keyframe", str(fragmented)], check=True)
    import vidtl

    model = vidtl.load(tiny_checkpoint, device="cpu")
    whole = list(model.timeline(stream_video, window_s=2, stride_s=1))
    assert len(list(model.timeline(fragmented, window_s=2, stride_s=1))) == len(whole) == 8
