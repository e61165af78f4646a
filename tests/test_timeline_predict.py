"""vidtl-predict mode=timeline on real encoded long videos: the files, the segments against
known boundaries, the ONNX runtime, refusals."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose_config
from timeline_videos import write_colour_dataset, write_long_video

import vidtl
from vidtl.cli.predict import predict
from vidtl.core.errors import UserError
from vidtl.core.own_files import WouldReplaceError
from vidtl.timeline.picture import draw_timeline, shown_classes
from vidtl.timeline.segments import Segment

SCENES = [("red", 6), ("green", 5), ("blue", 7), ("red", 4)]


@pytest.fixture(scope="module")
def colour_checkpoint(tmp_path_factory) -> Path:
    """A tiny model trained on three colours (it tells them apart at once)."""
    from vidtl.cli.train import train

    out = tmp_path_factory.mktemp("colour_run")
    data = write_colour_dataset(out / "data")
    cfg = compose_config("train", [
        "data=folder", f"data.root={data}", f"paths.output_dir={out}", "data.num_frames=2",
        "data.crop_size=32", "data.short_side=32", "data.batch_size=4", "data.num_workers=0",
        "data.persistent_workers=false", "data.pin_memory=false", "model/backbone=timm",
        "model.backbone.name=test_efficientnet", "model.backbone.pretrained=false",
        "trainer.accelerator=cpu", "trainer.max_epochs=6", "callbacks.progress_bar=null",
        "logger=none", "test=false"])
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return path, write_long_video(path, SCENES)


def run_timeline(checkpoint: Path, source: Path | str, out: Path, *extra: str) -> dict:
    cfg = compose_config("predict", [f"ckpt_path={checkpoint}", f"input={source}",
                                     "mode=timeline", f"output_dir={out}", "progress=false",
                                     *extra])
    from vidtl.cli.predict_timeline import predict_timeline

    return predict_timeline(cfg)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_segments_of_a_long_video_match_the_known_boundaries(colour_checkpoint, long_video,
                                                             tmp_path):
    video, truth = long_video
    run_timeline(colour_checkpoint, video, tmp_path, "timeline.window_s=2")
    rows = read_csv(tmp_path / "timeline.csv")
    header = list(rows[0])
    assert header[:5] == ["video", "start_s", "end_s", "top_class", "top_probability"]
    assert sorted(header[5:]) == ["blue", "green", "red"]
    assert len(rows) == 21 and rows[3]["start_s"] == "3.000" and rows[3]["end_s"] == "5.000"
    for row in rows:
        probabilities = [float(row[c]) for c in header[5:]]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert float(row["top_probability"]) == pytest.approx(max(probabilities), abs=1e-6)
    segments = read_csv(tmp_path / "segments.csv")
    assert list(segments[0]) == ["video", "start_s", "end_s", "label", "mean_probability"]
    assert [s["label"] for s in segments] == [colour for colour, _, _ in truth]
    stride = 1.0
    for segment, (_, start, end) in zip(segments, truth, strict=True):
        assert abs(float(segment["start_s"]) - start) <= stride
        assert abs(float(segment["end_s"]) - end) <= stride
    picture = tmp_path / "long_timeline.png"
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_json_windows_on_stdout_as_they_are_scored(colour_checkpoint, long_video, tmp_path):
    video, _ = long_video
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.predict", f"ckpt_path={colour_checkpoint}",
         f"input={video}", "mode=timeline", f"output_dir={tmp_path}", "output=json",
         "timeline.stride_s=2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["start_s"] for line in lines] == list(range(0, 21, 2))  # 2 s windows
    assert {"video", "start_s", "end_s", "top_class", "top_probability"} <= set(lines[0])
    assert "real time" in result.stderr


def test_onnx_runtime_gives_the_same_window_scores(colour_checkpoint, long_video, tmp_path):
    pytest.importorskip("onnxruntime")
    from vidtl.cli.export import export
    from vidtl.inference.onnx_model import load_onnx_model
    from vidtl.inference.timeline_model import timeline_scores

    onnx = tmp_path / "colour.onnx"
    export(compose_config("export", [f"ckpt_path={colour_checkpoint}", f"output={onnx}",
                                     "format=onnx"]))
    video, _ = long_video
    model = vidtl.load(colour_checkpoint, device="cpu")
    torch_scores = list(model.timeline(video, window_s=3, stride_s=2))
    exported = load_onnx_model(onnx)
    assert exported.class_names == model.class_names
    onnx_scores = list(timeline_scores(exported, video, window_s=3, stride_s=2))
    assert len(onnx_scores) == len(torch_scores) == 10
    for a, b in zip(torch_scores, onnx_scores, strict=True):
        assert (a.start_s, a.end_s) == (b.start_s, b.end_s)
        assert torch.allclose(a.probabilities, b.probabilities, atol=1e-4, rtol=0)
    run_timeline(colour_checkpoint, video, tmp_path / "onnx", "runtime=onnx",
                 f"onnx_path={onnx}", "ckpt_path=null")
    assert len(read_csv(tmp_path / "onnx" / "timeline.csv")) == 21


def test_timeline_of_frames_in_memory(colour_checkpoint):
    from timeline_videos import colour_frames

    model = vidtl.load(colour_checkpoint, device="cpu")
    frames = iter(np.concatenate([colour_frames("blue", 50, 1), colour_frames("red", 50, 2)]))
    windows = list(model.timeline(frames, window_s=1, stride_s=1, fps=25))
    assert [model.class_names[int(w.probabilities.argmax())] for w in windows] == [
        "blue", "blue", "red", "red"]
    with pytest.raises(UserError, match="fps"):
        model.timeline(iter([]), window_s=1)


def test_a_broken_file_is_reported_and_the_others_go_on(colour_checkpoint, long_video,
                                                        tmp_path):
    video, _ = long_video
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (folder / "b_long.mp4").write_bytes(video.read_bytes())
    summary = run_timeline(colour_checkpoint, folder, tmp_path / "out", "timeline.stride_s=4")
    assert "error" in summary[str(folder / "a_broken.mp4")]
    assert summary[str(folder / "b_long.mp4")]["windows"] == 6
    assert {r["video"] for r in read_csv(tmp_path / "out" / "timeline.csv")} == {
        str(folder / "b_long.mp4")}


def test_files_that_vidtl_did_not_write_are_not_replaced(colour_checkpoint, long_video,
                                                         tmp_path):
    (tmp_path / "timeline.csv").write_text("my own notes\n")
    with pytest.raises(WouldReplaceError, match="timeline.csv"):
        run_timeline(colour_checkpoint, long_video[0], tmp_path)
    assert (tmp_path / "timeline.csv").read_text() == "my own notes\n"


@pytest.mark.parametrize("override, key", [("runtime=tensorrt", "runtime"),
                                           ("timeline.smooth=0", "timeline.smooth"),
                                           ("timeline.stride_s=-1", "timeline.stride_s"),
                                           ("mode=frames", "mode")])
def test_bad_settings_are_one_line_naming_the_key(colour_checkpoint, long_video, tmp_path,
                                                  override, key):
    cfg = compose_config("predict", [f"ckpt_path={colour_checkpoint}",
                                     f"input={long_video[0]}", "mode=timeline",
                                     f"output_dir={tmp_path}", override])
    with pytest.raises(UserError, match=key):
        predict(cfg)


@pytest.mark.parametrize("classes", [2, 101])
def test_the_picture_is_drawn_for_few_and_many_classes(tmp_path, classes):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(classes) * 0.3, size=120).astype(np.float32)
    names = [f"class_{i}" for i in range(classes)]
    starts = np.arange(120, dtype=float)
    segments = [Segment(0, 60, 0, 30.0, 60), Segment(60, 124, 1, 30.0, 60)]
    path = draw_timeline(tmp_path / "v_timeline.png", "v.mp4", starts, starts + 4,
                         probabilities, names, segments)
    assert path.read_bytes()[:4] == b"\x89PNG"
    shown = shown_classes(probabilities)
    assert len(shown) == min(classes, 12)
    assert set(probabilities.argmax(1).tolist()) & set(shown)


def test_an_onnx_description_vidtl_did_not_write_is_refused(colour_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from vidtl.cli.export import export
    from vidtl.inference.onnx_model import ExportedModelError, load_onnx_model

    onnx = tmp_path / "m.onnx"
    export(compose_config("export", [f"ckpt_path={colour_checkpoint}", f"output={onnx}",
                                     "format=onnx"]))
    sidecar = tmp_path / "m.onnx.json"
    description = json.loads(sidecar.read_text())
    for change, message in (
            ({"sha256": "0" * 64}, "not a model vidtl-export wrote"),
            ({"clip_sampling": {**description["clip_sampling"],
                                "sampler": {"_target_": "os.system"}}}, "sampler"),
            ({"clip_sampling": {**description["clip_sampling"], "crop_size": 10**9}},
             "crop_size"),
            ({"class_names": ["a\x1b[2J"]}, "printable")):
        sidecar.write_text(json.dumps({**description, **change}))
        with pytest.raises(ExportedModelError, match=message):
            load_onnx_model(onnx)


def test_pictures_of_one_stem_are_kept_apart_and_a_foreign_picture_is_kept(
        colour_checkpoint, long_video, tmp_path, capsys):
    video, _ = long_video
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "long.mp4").write_bytes(video.read_bytes())
    listing = tmp_path / "videos.txt"
    listing.write_text("a/long.mp4\nb/long.mp4\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "long_timeline.png").write_bytes(b"\x89PNG my own picture")
    summary = run_timeline(colour_checkpoint, listing, out, "timeline.stride_s=4")
    assert (out / "long_timeline.png").read_bytes() == b"\x89PNG my own picture"
    assert "long_timeline.png exists" in capsys.readouterr().err
    assert [s["picture"] for s in summary.values()] == [None, str(out / "long_2_timeline.png")]
    assert len(read_csv(out / "timeline.csv")) == 12


def test_a_short_file_without_a_frame_count_gets_one_window(colour_checkpoint, tmp_path):
    from timeline_videos import colour_frames

    from vidtl.data.tools.synthetic import write_video

    short = tmp_path / "short.mkv"  # Matroska records no frame count
    write_video(short, colour_frames("green", 25, 3), fps=25, codec="h264")
    [window] = list(vidtl.load(colour_checkpoint, device="cpu").timeline(short, window_s=2))
    assert (window.start_s, window.end_s) == (0, 1.0)
    segments = segments_of_video(colour_checkpoint, short, tmp_path / "out")
    assert [(s["start_s"], s["end_s"], s["label"]) for s in segments] == [
        ("0.000", "1.000", "green")]


def segments_of_video(checkpoint: Path, video: Path, out: Path, *extra: str) -> list[dict]:
    run_timeline(checkpoint, video, out, *extra)
    return read_csv(out / "segments.csv")


def test_a_file_name_that_is_not_utf8_is_written_escaped(colour_checkpoint, long_video,
                                                         tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    odd = folder / os.fsdecode(b"odd\xff.mp4")
    odd.write_bytes(long_video[0].read_bytes())
    (folder / "z.mp4").write_bytes(long_video[0].read_bytes())
    summary = run_timeline(colour_checkpoint, folder, tmp_path / "out", "timeline.stride_s=5")
    assert [s["windows"] for s in summary.values()] == [5, 5]
    videos = {r["video"] for r in read_csv(tmp_path / "out" / "timeline.csv")}
    assert videos == {str(folder / "odd\\xff.mp4"), str(folder / "z.mp4")}


def test_two_runs_cannot_write_one_folder(tmp_path):
    from vidtl.timeline.outputs import FolderInUseError, TimelineFiles

    first = TimelineFiles(tmp_path, ["a", "b"])
    with pytest.raises(FolderInUseError, match="another output_dir"):
        TimelineFiles(tmp_path, ["a", "b"])
    first.close()
    TimelineFiles(tmp_path, ["a", "b"]).close()  # free again
