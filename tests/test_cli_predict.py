"""vidtl-predict on real video files: folders, lists, broken files, both output formats."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from helpers import compose_config

from vidtl.cli.predict import predict
from vidtl.inference.inputs import InputError, expand_input


def run_predict(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidtl.cli.predict", *overrides],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def folder_with_a_broken_file(tiny_dataset, tmp_path):
    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    for video in sorted(tiny_dataset.rglob("*.avi"))[:3]:
        shutil.copy(video, folder / video.name)
    (folder / "sub" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    return folder


def test_predict_json_lines_report_the_broken_file_and_predict_the_rest(
        tiny_checkpoint, folder_with_a_broken_file):
    result = run_predict(f"ckpt_path={tiny_checkpoint}", f"input={folder_with_a_broken_file}",
                         "output=json", "num_workers=0", "top_k=3", "num_test_clips=2")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # stdout: JSON only
    assert len(lines) == 4
    broken = [line for line in lines if "error" in line]
    assert [line["video"] for line in broken] == [str(folder_with_a_broken_file / "sub" /
                                                      "broken.mp4")]
    assert "broken.mp4" in result.stderr
    for line in lines:
        if "topk" in line:
            names = [name for name, _ in line["topk"]]
            probabilities = [p for _, p in line["topk"]]
            assert len(names) == 3 and len(set(names)) == 3
            assert probabilities == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1 + 1e-5


def test_predict_the_real_clips(tiny_checkpoint, shared_videos):
    cfg = compose_config("predict", [f"ckpt_path={tiny_checkpoint}", f"input={shared_videos}",
                          "num_workers=0", "progress=false"])
    results = predict(cfg)
    videos = sorted(p for p in shared_videos.iterdir() if p.suffix in (".mp4", ".avi"))
    assert [r["video"] for r in results] == [str(v) for v in videos]
    assert all("topk" in r and len(r["topk"]) == 5 for r in results), results


def test_predict_a_list_file_with_a_missing_entry_in_text_mode(tiny_checkpoint, tiny_dataset,
                                                                tmp_path):
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# my videos\n{video}\n\nmissing.avi\n")
    assert expand_input(listing) == [video, tmp_path / "missing.avi"]
    result = run_predict(f"ckpt_path={tiny_checkpoint}", f"input={listing}", "num_workers=0")
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{video}: ") and line.count(", ") == 4
    assert "missing.avi" in result.stderr


def test_predict_a_wrong_input_is_one_clear_error(tiny_checkpoint, tmp_path):
    result = run_predict(f"ckpt_path={tiny_checkpoint}", f"input={tmp_path / 'nothing.mp4'}")
    assert result.returncode == 2
    assert "nothing.mp4 does not exist" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without video files"):
        expand_input(tmp_path / "empty")


def test_predict_exits_with_an_error_when_no_video_could_be_read(tiny_checkpoint, tmp_path):
    """Issue 24: vidtl-predict exited 0 when no video could be predicted."""
    from vidtl.core.errors import UserError

    for name in ("a.avi", "b.mp4"):
        (tmp_path / name).write_bytes(b"not a video")
    cfg = compose_config("predict", [f"ckpt_path={tiny_checkpoint}", f"input={tmp_path}",
                                     "num_workers=0", "progress=false"])
    with pytest.raises(UserError, match="no video could be predicted"):
        predict(cfg)
