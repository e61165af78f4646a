"""Runs that outgrow one machine, simulated on localhost: two launches of ``vidtl-train`` with
``trainer=ddp trainer.num_nodes=2 trainer.devices=1`` (one process each, gloo), ``NODE_RANK``
0 and 1, ``MASTER_ADDR=127.0.0.1``, sharing one run folder (a shared filesystem), on the frame
store and on the shard stream. What each process reads is recorded by a research project's own
module (``rank_probe``, through ``custom_imports``), which also preempts both nodes mid-epoch
(SIGUSR1, as a cluster does) before the two launches resume with ``resume=auto``.

Checked: each video at most once per epoch across the nodes (every one that fills a batch),
across the preemption too; the resumed run ends at the step an uninterrupted one would; its
metrics (gathered from both nodes, written once) equal a single-process evaluation of the
checkpoint; every test video predicted once; a node that sees another run folder stops both
with one line.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import compose_config, tiny_train_overrides
from test_shard_stream import prepare_shards

from vidtl.cli.prepare import prepare

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent
NODE_OPTIONS = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1",
                "trainer.num_nodes=2", "trainer.max_epochs=2", "trainer.limit_train_batches=null",
                "trainer.limit_val_batches=null", "trainer.limit_test_batches=null",
                "data.num_workers=0", "custom_imports=[rank_probe]",
                "module._target_=rank_probe.RecordingModule", "logger=csv"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_nodes(run: Path, data_root: Path, probe: Path, *overrides: str,
                     preempt_at: int | None = None, node1_run: Path | None = None,
                     node1_overrides: tuple[str, ...] = ()) -> list[tuple[int, str, str]]:
    """Both launches, as two nodes would run them; ``(exit status, stdout, stderr)`` each."""
    port, launched = free_port(), []
    probe.mkdir(parents=True, exist_ok=True)
    for node in (0, 1):
        folder = node1_run if node == 1 and node1_run is not None else run
        command = [sys.executable, "-m", "vidtl.cli.train", *(
            o.replace("paths.output_dir", "hydra.run.dir") for o in tiny_train_overrides(
                folder, data_root, *NODE_OPTIONS, *overrides))]
        if node == 1:  # its own log file; node 0 writes the run's .hydra/
            command += ["hydra.output_subdir=null", "hydra.job.name=train_node1",
                        *node1_overrides]
        env = {**os.environ, "WANDB_MODE": "disabled", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "NODE_RANK": str(node), "VIDTL_PROBE_DIR": str(probe),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS),
                                                           os.environ.get("PYTHONPATH")]))}
        env.pop("VIDTL_PROBE_PREEMPT_AT", None)
        if preempt_at is not None:
            env["VIDTL_PROBE_PREEMPT_AT"] = str(preempt_at)
        outputs = [(probe / f"node{node}.{kind}").open("w") for kind in ("out", "err")]
        launched.append((subprocess.Popen(command, stdout=outputs[0], stderr=outputs[1],
                                          text=True, env=env), outputs))
    results = []
    for process, outputs in launched:
        try:
            status = process.wait(timeout=300)
        except subprocess.TimeoutExpired:  # the nodes wait for each other: stop both
            for other, _ in launched:
                other.kill()
            status = process.wait()
        for output in outputs:
            output.close()
        results.append((status, Path(outputs[0].name).read_text(),
                        Path(outputs[1].name).read_text()))
    return results


def reads_per_epoch(probe: Path) -> dict[int, list[tuple[int, str]]]:
    """``{epoch: [(rank, video), ...]}`` of every training clip loaded."""
    reads: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)
    for rank in (0, 1):
        path = probe / f"rank{rank}.tsv"
        for line in path.read_text().splitlines() if path.exists() else []:
            epoch, video = line.split("\t")
            reads[int(epoch)].append((rank, video))
    return reads


def assert_each_video_once_per_epoch(reads: dict[int, list[tuple[int, str]]], epochs: int,
                                     per_rank: int) -> None:
    assert sorted(reads) == list(range(epochs))
    for epoch, loaded in reads.items():
        videos = [video for _, video in loaded]
        assert len(videos) == len(set(videos)) == 2 * per_rank, (epoch, len(videos),
                                                                 len(set(videos)))
        assert collections.Counter(rank for rank, _ in loaded) == {0: per_rank, 1: per_rank}


def assert_ran_on_two_nodes(results: list[tuple[int, str, str]]) -> None:
    for status, _, stderr in results:
        assert status == 0, stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in results[1][2]
    assert "Starting with 2 processes" in results[0][2]


def single_process_metrics(checkpoint: Path, out: Path, *data: str) -> dict:
    """``vidtl-eval`` of ``checkpoint`` in one process, on val and test."""
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.evaluate", f"ckpt_path={checkpoint}",
         f"paths.output_dir={out}", "subsets=[val,test]", "data.num_workers=0", "logger=none",
         "custom_imports=[rank_probe]", *data], capture_output=True, text=True, timeout=600,
        env={**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(TESTS)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def assert_metrics_gathered_once(run: Path, results: list[tuple[int, str, str]],
                                 alone: dict, test_videos: int) -> None:
    """metrics.json (written by node 0 only) equals the single-process evaluation; each test
    video predicted once; the JSON line printed by one node."""
    metrics = json.loads((run / "metrics.json").read_text())
    keys = [k for k in alone if k.startswith(("val/", "test/"))]
    assert keys and {k: metrics[k] for k in keys} == pytest.approx({k: alone[k] for k in keys},
                                                                   abs=1e-6)
    with open(run / "predictions.csv") as file:
        videos = [row["video"] for row in csv.DictReader(file)]
    assert len(videos) == len(set(videos)) == test_videos
    printed = [[line for line in out.splitlines() if line.startswith('{"')]
               for _, out, _ in results]
    assert len(printed[0]) == 1 and not printed[1]


def assert_both_refused(results: list[tuple[int, str, str]], *words: str) -> None:
    for status, _, stderr in results:
        assert status == 2, stderr[-3000:]
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and all(w in errors[0] for w in words), stderr[-3000:]
        assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def frame_store(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi_node") / "frames"
    prepare(compose_config("prepare", [
        f"data.root={tiny_dataset}", "data.synthetic=null", "mode=frames", f"output={out}",
        "short_side=32", "workers=1", "progress=false"]))
    return out


def test_two_nodes_on_the_frame_store(tiny_dataset, frame_store, tmp_path):
    """31 training videos (one left out): 15 a node, 3 batches of 4 each (the 31st and the
    last of each share wait for another epoch, as drop_last does); preempted at step 4 of
    6, mid-epoch 1, resumed; 15 test videos (odd: one node evaluates 8, the other 7)."""
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("MoveRight/v_MoveRight_g02_c01.avi\nMoveRight/v_MoveRight_g01_c01.avi\n")
    run, probe = tmp_path / "run", tmp_path / "probe"
    data = ["data.source=frames", f"data.frames_root={frame_store}",
            f"data.exclude_list={exclude}"]
    results = launch_two_nodes(run, tiny_dataset, probe, *data, preempt_at=4)
    assert_ran_on_two_nodes(results)
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 5  # step 4 done, then saved

    # A node that sees another run folder finds no checkpoint, one launched with another
    # batch size would train with it: both nodes stop, with one line.
    refused = launch_two_nodes(run, tiny_dataset, tmp_path / "probe_refused", *data,
                               "resume=auto", node1_run=tmp_path / "elsewhere")
    assert_both_refused(refused, "start from different checkpoints", "process 0 at step 5 of "
                        "launch", "process 1 at step 0 (a fresh start)")
    refused = launch_two_nodes(tmp_path / "other_run", tiny_dataset, tmp_path / "probe_other",
                               *data, node1_overrides=("data.batch_size=2",))
    assert_both_refused(refused, "launched with different settings: data.batch_size=4 on "
                        "process 0 and 2 on process 1")
    assert torch.load(last, weights_only=True)["global_step"] == 5  # untouched

    results = launch_two_nodes(run, tiny_dataset, probe, *data, "resume=auto")
    assert_ran_on_two_nodes(results)
    assert torch.load(last, weights_only=True)["global_step"] == 6
    assert_each_video_once_per_epoch(reads_per_epoch(probe), epochs=2, per_rank=12)
    alone = single_process_metrics(last, tmp_path / "alone", *data)
    assert_metrics_gathered_once(run, results, alone, test_videos=15)


@pytest.fixture(scope="module")
def shard_store(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi_node") / "shards"
    prepare_shards(tiny_dataset, str(out))  # shards of 5 videos
    return out


def test_two_nodes_on_the_shard_stream(shard_store, tmp_path):
    """32 training videos in shards of 5: 16 a node, 4 batches each; preempted at step 5 of 8
    (mid-epoch 1), resumed; no dataset root on either node."""
    run, probe = tmp_path / "run", tmp_path / "probe"
    data = ["data.source=stream", f"data.shards={shard_store}"]
    results = launch_two_nodes(run, Path("/nowhere"), probe, *data, preempt_at=5)
    assert_ran_on_two_nodes(results)
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 6
    results = launch_two_nodes(run, Path("/nowhere"), probe, *data, "resume=auto")
    assert_ran_on_two_nodes(results)
    assert "resuming epoch 1 of the stream after 2 of its batches" in (
        run / "train.log").read_text()
    assert torch.load(last, weights_only=True)["global_step"] == 8
    assert_each_video_once_per_epoch(reads_per_epoch(probe), epochs=2, per_rank=16)
    alone = single_process_metrics(last, tmp_path / "alone", *data)
    assert_metrics_gathered_once(run, results, alone, test_videos=16)
