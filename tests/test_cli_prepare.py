"""vidtl-prepare and vidtl-check on real videos, and training from what they write."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import av
import pytest
from helpers import compose_config, make_datamodule, tiny_train_overrides

from vidtl.cli.check import check
from vidtl.cli.evaluate import evaluate
from vidtl.cli.prepare import prepare
from vidtl.cli.train import train
from vidtl.data.frames.prepared_folder import MANIFEST
from vidtl.data.tools.prepare import FAILURES


def data_overrides(root) -> list[str]:
    return [f"data.root={root}", "data.synthetic=null"]


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path):
    """A writable copy of the tiny dataset."""
    return shutil.copytree(tiny_dataset, tmp_path / "dataset")


def videos_of(root):
    return sorted(root.rglob("*.avi"))


def frame_files(root):
    """Finished frame files (not the hidden files being written)."""
    return [p for p in root.rglob("*.frames") if not p.name.startswith(".")]


def test_frames_mode_lists_a_broken_video_and_resumes(dataset_copy, tmp_path):
    broken = videos_of(dataset_copy)[5]
    broken.write_bytes(b"not a video" * 50)
    out = tmp_path / "store"
    cfg = compose_config("prepare", [*data_overrides(dataset_copy), f"output={out}",
                                     "workers=2", "progress=false", "short_side=32"])
    summary = prepare(cfg)
    total = len(videos_of(dataset_copy))
    assert summary.prepared == total - 1 and summary.already_done == 0
    assert list(summary.failed) == [str(broken)]
    assert str(broken) in (out / FAILURES).read_text()
    assert len(frame_files(out)) == total - 1
    again = prepare(cfg)  # a second run redoes nothing that was done
    assert (again.prepared, again.already_done, list(again.failed)) == (0, total - 1, [str(broken)])
    changed = compose_config("prepare", [*data_overrides(dataset_copy), f"output={out}",
                                         "short_side=64", "progress=false"])
    with pytest.raises(FileExistsError, match="other settings"):
        prepare(changed)


def test_prepare_resumes_after_being_killed(dataset_copy, tmp_path):
    out = tmp_path / "store"
    command = [sys.executable, "-m", "vidtl.cli.prepare", *data_overrides(dataset_copy),
               f"output={out}", "workers=1", "progress=false"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(frame_files(out)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p: p.stat().st_mtime_ns for p in frame_files(out)}
    total = len(videos_of(dataset_copy))
    assert 3 <= len(finished) < total, "the kill came too late to test resuming"
    summary = prepare(compose_config("prepare", [*data_overrides(dataset_copy), f"output={out}",
                                                 "workers=1", "progress=false"]))
    assert summary.already_done == len(finished) and summary.prepared == total - len(finished)
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # not redone
    assert not list(out.rglob(".*partial*"))


def test_train_from_the_frame_store(tiny_dataset, tmp_path):
    out = tmp_path / "store"
    prepare(compose_config("prepare", [*data_overrides(tiny_dataset), f"output={out}",
                                       "workers=1", "progress=false", "short_side=40"]))
    run = tmp_path / "run"
    metrics = train(compose_config("train", tiny_train_overrides(
        run, tiny_dataset, "data.source=frames", f"data.frames_root={out}", "logger=none",
        "data.load_threads=2")))  # the batches of the frame store are read in two threads
    assert metrics["skipped_videos"] == 0 and metrics["train_clips_per_s"] > 0
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # The checkpoint remembers the frame store; evaluation can read the videos instead. (Same
    # clips up to JPEG error: test_data_frame_store compares them pixel by pixel.)
    results = {}
    for source in ("frames", "video"):
        results[source] = evaluate(compose_config("eval", [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"paths.output_dir={tmp_path / source}", f"data.source={source}",
            "data.num_workers=0", "trainer.accelerator=cpu", "logger=none"]))
        assert results[source]["skipped_videos"] == 0, source
    assert results["frames"]["test/loss"] == pytest.approx(results["video"]["test/loss"], rel=0.05)


def test_frames_source_without_a_store_is_a_clear_error(tiny_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"not a folder prepared by .*{MANIFEST}"):
        make_datamodule(tiny_dataset, source="frames", frames_root=tmp_path / "none")
    with pytest.raises(ValueError, match="frames_root"):
        make_datamodule(tiny_dataset, source="frames")


def test_reencode_mode_is_the_same_dataset_with_short_keyframe_intervals(tiny_dataset, tmp_path):
    out = tmp_path / "reencoded"
    summary = prepare(compose_config("prepare", [*data_overrides(tiny_dataset), f"output={out}",
                                                 "mode=reencode", "keyframe_interval=4",
                                                 "workers=1", "progress=false"]))
    assert summary.prepared == len(videos_of(tiny_dataset)) and not summary.failed
    original = make_datamodule(tiny_dataset, num_workers=0).index
    reencoded = make_datamodule(out, num_workers=0).index  # the annotations were copied
    assert reencoded.class_names == original.class_names
    for subset, records in original.subsets.items():
        assert [(r.path.relative_to(tiny_dataset), r.label) for r in records] == [
            (r.path.relative_to(out), r.label) for r in reencoded.subsets[subset]]
    video = videos_of(out)[0]
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        keyframes = [i for i, p in enumerate(container.demux(stream)) if p.is_keyframe]
    assert keyframes[:3] == [0, 4, 8]


def test_check_reports_broken_videos_and_writes_an_exclusion_list(dataset_copy, tmp_path):
    videos = videos_of(dataset_copy)
    videos[0].write_bytes(b"")
    videos[1].write_bytes(videos[1].read_bytes()[:2000])
    data = videos[2].read_bytes()
    videos[2].write_bytes(data[: len(data) * 2 // 3])  # truncated: fewer frames than the header
    videos[3].unlink()
    report_path, exclusions = tmp_path / "report.json", tmp_path / "exclude.txt"
    bad = check(compose_config("check", [*data_overrides(dataset_copy), f"output={report_path}",
                                         f"exclude_list={exclusions}", "workers=2",
                                         "progress=false"]))
    report = json.loads(report_path.read_text())
    assert report["bad"] == bad and report["checked"] == len(videos)
    assert set(bad) == {str(v) for v in videos[:4]}
    assert bad[str(videos[0])] == "zero-byte file"
    assert bad[str(videos[1])].startswith("undecodable")
    assert bad[str(videos[2])].startswith("truncated: the header says 12 frames")
    assert bad[str(videos[3])] == "missing file"
    before = make_datamodule(dataset_copy, num_workers=0).index
    after = make_datamodule(dataset_copy, num_workers=0, exclude_list=exclusions).index
    count = sum(map(len, before.subsets.values())) - sum(map(len, after.subsets.values()))
    excluded = {str(v) for v in videos[:3]}
    assert count == sum(str(r.path) in excluded for rs in before.subsets.values() for r in rs) > 0
    assert not any(str(r.path) in excluded for rs in after.subsets.values() for r in rs)


def test_a_command_whose_every_input_failed_exits_with_an_error(tmp_path):
    """Issue 24: vidtl-prepare and vidtl-predict exited 0 after doing nothing."""
    from vidtl.core.errors import UserError

    root = tmp_path / "broken"
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            (root / split / name / "v.avi").write_bytes(b"not a video")
    with pytest.raises(UserError, match="all 4 videos failed, nothing was prepared"):
        prepare(compose_config("prepare", [
            "data=folder", f"data.root={root}", "data.synthetic=null", "mode=frames",
            f"output={tmp_path / 'store'}", "workers=1", "progress=false"]))
