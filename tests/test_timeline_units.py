"""The timeline's parts on their own: window placement, one decode per frame, smoothing and
segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidtl.core.errors import UserError
from vidtl.data.clips.sampling import DenseSampler, SegmentSampler
from vidtl.timeline.frame_streams import (
    ArrayFrameStream,
    SourceError,
    display_name,
    source_kind,
    source_stem,
)
from vidtl.timeline.scoring_loop import TimelineStats, score_windows
from vidtl.timeline.segments import SegmentBuilder, Smoother, check_smoothing
from vidtl.timeline.window_assembly import WindowAssembler
from vidtl.timeline.window_plan import SEGMENT_WINDOW_S, WindowPlan, default_window_s


class CountingFrame:
    converted = 0

    def __init__(self, index: int) -> None:
        self.index = index

    def rgb(self) -> np.ndarray:
        CountingFrame.converted += 1
        return np.full((4, 4, 3), self.index % 256, dtype=np.uint8)


def first_pixel(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame[:1, :1].copy()).permute(2, 0, 1)


def test_windows_sample_as_evaluation_does_and_default_to_the_sampling_span():
    plan = WindowPlan(SegmentSampler(4), fps=10, window_s=2.0, stride_s=0.5)
    assert plan.window_length == 20
    window = plan.window(3)
    assert window.start == 15 and window.start_s == 1.5 and window.end_s == 3.5
    assert window.frames.tolist() == (15 + SegmentSampler(4)(20, False, None)).tolist()
    assert default_window_s(DenseSampler(8, 4), 25.0) == pytest.approx(29 / 25)
    assert default_window_s(SegmentSampler(8), 25.0) == SEGMENT_WINDOW_S


@pytest.mark.parametrize("window_s, stride_s", [(0, 1), (1, 0), (-1, 1), (1, float("nan")),
                                                (1e9, 1), (0.01, 1)])
def test_window_settings_out_of_range_are_refused(window_s, stride_s):
    with pytest.raises(UserError, match="timeline"):
        WindowPlan(SegmentSampler(4), fps=25, window_s=window_s, stride_s=stride_s)


def test_each_frame_is_converted_once_and_memory_holds_one_window():
    plan = WindowPlan(SegmentSampler(8), fps=25, window_s=4.0, stride_s=1.0)
    assembler = WindowAssembler(plan, first_pixel)
    CountingFrame.converted = 0
    windows, held = [], 0
    for index in range(25 * 600):  # ten minutes of video
        windows += assembler.push(index, CountingFrame(index))
        held = max(held, assembler.frames_held)
    sampled = {i for w in windows for i in w.window.frames.tolist()}
    assert len(windows) == 597  # windows that end inside the video
    first_window = set(range(plan.window_length))  # kept until the first window is out
    assert CountingFrame.converted == len(sampled | first_window)  # shared frames: once
    assert CountingFrame.converted < 25 * 600 / 5  # most frames are never converted
    assert held <= 8 * 4  # at most the frames of the windows in flight
    for ready in windows[:3]:
        expected = ready.window.frames % 256
        assert ready.clip[:, 0, 0, 0].tolist() == expected.tolist()


def test_a_source_shorter_than_a_window_gets_one_window_over_all_of_it():
    plan = WindowPlan(SegmentSampler(4), fps=25, window_s=4.0, stride_s=1.0)
    assembler = WindowAssembler(plan, first_pixel)
    windows = [w for i in range(30) for w in assembler.push(i, CountingFrame(i))]
    assert windows == []
    [short] = assembler.finish()
    assert short.window.length == 30 and short.window.end_s == 30 / 25
    assert short.clip[:, 0, 0, 0].tolist() == SegmentSampler(4)(30, False, None).tolist()
    assembler = WindowAssembler(plan, first_pixel)  # a longer one: nothing at its end
    assert [w for i in range(150) for w in assembler.push(i, CountingFrame(i))]
    assert assembler.finish() == []


def test_score_windows_over_frames_in_memory():
    frames = [np.full((8, 8, 3), i, dtype=np.uint8) for i in range(50)]
    stats = TimelineStats()
    plan = WindowPlan(SegmentSampler(2), fps=10, window_s=1.0, stride_s=1.0)
    scores = list(score_windows(ArrayFrameStream(frames, 10), lambda info: plan, first_pixel,
                                lambda clips: clips.float().mean((1, 2, 3, 4))[:, None],
                                stats=stats))
    assert [s.start_s for s in scores] == [0, 1, 2, 3, 4]
    assert scores[1].probabilities.item() == pytest.approx((12 + 17) / 2)
    assert stats.windows == 5 and stats.frames == 50 and stats.video_s == 5


def test_smoothing_is_centred_median_or_mean():
    values = [0, 0, 9, 0, 0, 5, 5, 5]
    for filter, expected in (("median", [0, 0, 0, 0, 0, 5, 5, 5]),
                             ("mean", [0, 3, 3, 3, 5 / 3, 10 / 3, 5, 5])):
        smoother = Smoother(3, filter)
        out = [float(s[2]) for i, v in enumerate(values)
               for s in smoother.push(i, i + 1, torch.tensor([float(v)]))]
        out += [float(s[2]) for s in smoother.flush()]
        assert out == pytest.approx(expected)


def segments_of(labels: list[int], stride: float = 1.0, min_segment_s: float = 0.0):
    builder = SegmentBuilder(stride, min_segment_s)
    out = []
    for i, label in enumerate(labels):
        scores = torch.zeros(3)
        scores[label] = 1.0
        out += list(builder.add(i * stride, i * stride + 2, scores))
    return out + list(builder.finish())


def test_consecutive_windows_merge_into_segments_that_cover_the_video():
    segments = segments_of([0, 0, 0, 1, 1, 2, 2, 2])
    assert [(s.label, s.start_s, s.end_s) for s in segments] == [
        (0, 0.0, 3.5), (1, 3.5, 5.5), (2, 5.5, 9.0)]
    assert all(s.mean_probability == 1.0 for s in segments)


def test_a_segment_is_written_as_soon_as_it_is_final():
    def emitted_at(min_segment_s: float) -> list[tuple[int, int]]:
        builder, out = SegmentBuilder(1.0, min_segment_s), []
        for k, label in enumerate([0] * 5 + [1] * 30 + [2] * 5):
            scores = torch.zeros(3)
            scores[label] = 1.0
            out += [(k, s.label) for s in builder.add(k, k + 4, scores)]
        return out

    assert emitted_at(0) == [(5, 0), (35, 1)]  # when the label changes
    assert emitted_at(2) == [(6, 0), (36, 1)]  # once the next segment has lasted 2 s


def test_segments_are_contiguous_when_window_starts_round_to_frames():
    plan = WindowPlan(SegmentSampler(8), 25.0, 2.0, 0.5)  # starts 12 and 13 frames apart
    builder, segments = SegmentBuilder(0.5, 0.0), []
    for k in range(40):
        window, scores = plan.window(k), torch.zeros(2)
        scores[(k // 3) % 2] = 1.0
        segments += builder.add(window.start_s, window.end_s, scores)
    segments += builder.finish()
    assert all(a.end_s == b.start_s for a, b in zip(segments, segments[1:]))
    assert segments[0].start_s == 0 and segments[-1].end_s == plan.window(39).end_s


def test_segments_end_where_the_windows_end():
    builder = SegmentBuilder(3.0, 0.0)  # windows of 1 s every 3 s
    segments = []
    for k in range(4):
        segments += builder.add(3 * k, 3 * k + 1, torch.tensor([1.0, 0.0]))
    segments += builder.finish()
    assert [(s.start_s, s.end_s) for s in segments] == [(0, 10)]
    one_frame = SegmentBuilder(1.0, 0.0)
    segments = [*one_frame.add(0, 0.04, torch.tensor([1.0])), *one_frame.finish()]
    assert [(s.start_s, s.end_s) for s in segments] == [(0, 0.04)]


def test_short_segments_are_absorbed_by_their_neighbours():
    segments = segments_of([0, 0, 0, 1, 0, 0, 2, 2, 2, 2], min_segment_s=2)
    assert [(s.label, s.start_s, s.end_s) for s in segments] == [(0, 0.0, 6.5), (2, 6.5, 11.0)]
    first_short = segments_of([1, 0, 0, 0], min_segment_s=2)
    assert [(s.label, s.start_s) for s in first_short] == [(0, 0.0)]


@pytest.mark.parametrize("smooth, filter, minimum", [(0, "median", 0), (3, "mode", 0),
                                                     (3, "median", -1), (True, "mean", 0)])
def test_bad_smoothing_settings_name_their_key(smooth, filter, minimum):
    with pytest.raises(UserError, match="timeline"):
        check_smoothing(smooth, filter, minimum)


def test_sources_are_told_apart_and_unknown_schemes_refused():
    assert source_kind("-") == "pipe"
    assert source_kind("rtsp://cam/1") == source_kind("http://127.0.0.1:9/x.ts") == "url"
    assert source_kind("/dev/video0") == "device"
    assert source_kind("match.mp4") == "file"
    with pytest.raises(SourceError, match="scheme"):
        source_kind("file:///etc/passwd")
    assert source_stem("rtsp://cam.local:554/live?x=1") == "cam.local_554_live"  # no query
    assert source_stem("-") == "stdin"
    assert display_name("rtsp://admin:secret@cam.local:554/live") == "rtsp://cam.local:554/live"
    assert display_name("http://cam/live?user=admin&password=secret") == "http://cam/live?..."
    with pytest.raises(SourceError) as refused:
        source_kind("rstp://admin:secret@cam/1")  # a mistyped scheme
    assert "secret" not in str(refused.value)
    assert "secret" not in source_stem("rtsp://admin:secret@cam.local/live")


def resident_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_a_long_encoded_video_is_read_in_bounded_memory(tmp_path):
    from vidtl.data.tools.synthetic import write_video
    from vidtl.timeline.frame_streams import PyAVFrameStream

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (50, 64, 96, 3), dtype=np.uint8)
    path = tmp_path / "long.mp4"
    write_video(path, np.concatenate([scene] * 180), fps=25, codec="mpeg4")  # 6 minutes
    plan = WindowPlan(SegmentSampler(8), fps=25, window_s=4.0, stride_s=1.0)
    memory = []
    for _ in score_windows(PyAVFrameStream(str(path)), lambda info: plan,
                               lambda f: torch.from_numpy(f).permute(2, 0, 1),
                               lambda clips: clips.float().mean((1, 2, 3, 4))[:, None]):
        memory.append(resident_mb())
    assert len(memory) == 360 - 3
    # a copy of every frame would take 0.9 GiB, of every sampled frame 70 MiB
    assert max(memory[100:]) - memory[100] < 25, (memory[100], max(memory[100:]))
