"""Sharded streaming: vidtl-prepare mode=shards to a folder and to a real S3-compatible server
(moto, started on localhost), data.source=stream with ranks, workers, exact resume and damaged
shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import compose_config, tiny_train_overrides

from vidtl.cli.prepare import prepare
from vidtl.cli.train import train
from vidtl.data.shards.epoch_plan import (
    EpochPlan,
    delivered,
    delivery_order,
    worker_runs,
)
from vidtl.data.shards.shard_index import ShardIndex
from vidtl.data.shards.storage import ShardAccessError, open_storage
from vidtl.data.shards.stream_dataset import ShardReadError

BUCKET = "vidtl-shards"


def prepare_shards(root: Path, output: str, *extra: str):
    return prepare(compose_config("prepare", [
        f"data.root={root}", "data.synthetic=null", "mode=shards", f"output={output}",
        "shard_samples=5", "short_side=32", "workers=1", "progress=false", *extra]))


@pytest.fixture(scope="module")
def shards(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "store"
    prepare_shards(tiny_dataset, str(out))
    return out


def stream_module(location, batch_size=4, num_workers=0, **options):
    from vidtl.assembly.data import build_datamodule, data_options

    data = data_options(root="unused", source="stream", shards=str(location), num_frames=2,
                        crop_size=32, short_side=32, flip=False, batch_size=batch_size,
                        num_workers=num_workers, pin_memory=False, **options)
    return build_datamodule(data)


# --- the plan: every sample once per epoch, equal batch counts, worker runs ---------------

@pytest.mark.parametrize("sizes,batch,world", [
    ((5, 5, 5, 5, 5, 5, 2), 4, 1), ((5, 5, 5, 5, 5, 5, 2), 4, 2), ((7, 3, 9), 4, 3),
    ((256,) * 3 + (17,), 8, 8), ((5, 4), 4, 2), ((1, 1, 1), 1, 3)])
def test_every_sample_once_per_epoch_across_ranks(sizes, batch, world):
    plans = [EpochPlan(sizes, batch, seed=1, world_size=world, rank=r) for r in range(world)]
    for epoch in (0, 1):
        batches = [p.batches(epoch) for p in plans]
        seen = [n for rank in batches for b in rank for n in b]
        assert sorted(seen) == list(range(sum(sizes)))  # each once, none padded or dropped
        assert len({len(rank) for rank in batches}) == 1  # DDP ranks step together
        assert all(1 <= len(b) <= batch for rank in batches for b in rank)
    assert plans[0].batches(0) == EpochPlan(sizes, batch, seed=1, world_size=world).batches(0)
    if sum(sizes) > 10:  # another order each epoch, and with another seed
        assert plans[0].order(0) != plans[0].order(1)
        assert EpochPlan(sizes, batch, seed=2, world_size=world).order(0) != plans[0].order(0)


def test_shards_are_read_in_runs_and_workers_take_turns():
    plan = EpochPlan((5,) * 6, 2, seed=0)
    order = plan.order(0)
    assert all(len({n // 5 for n in order[i:i + 5]}) == 1 for i in range(0, 30, 5))
    runs = worker_runs(plan.batches(0), 3)
    assert [len(r) for r in runs] == [5, 5, 5] and sum(runs, []) == plan.batches(0)
    assert delivery_order(runs)[:4] == [runs[0][0], runs[1][0], runs[2][0], runs[0][1]]
    assert delivered(list(range(15)), 3, 4) == [0, 5, 10, 1]


def test_too_few_samples_for_the_ranks_is_a_clear_error():
    with pytest.raises(Exception, match="fewer than the 4 ranks"):
        EpochPlan((3,), 2, world_size=4)


# --- writing -------------------------------------------------------------------------------

def test_prepare_writes_webdataset_shards_and_an_index(shards, tiny_dataset):
    import tarfile

    index = ShardIndex.read(open_storage(shards))
    train = index.subsets["train"]
    assert len(index.class_names) == 8
    assert [len(s) for s in train] == [5] * 6 + [2]
    assert index.subsets["test"] == index.subsets["val"]  # UCF101: one set, written once
    assert len({s.name for s in index.subsets["val"]} & {s.name for s in train}) == 0
    with tarfile.open(shards / train[0].name) as archive:
        names = archive.getnames()
        meta = json.loads(archive.extractfile("000000.json").read())
    assert names[:2] == ["000000.frames", "000000.json"]
    assert meta["video"] == train[0].videos[0] and meta["label"] == train[0].labels[0]
    labels_in_store_order = [label for s in train for label in s.labels]
    assert labels_in_store_order != sorted(labels_in_store_order)  # written shuffled
    again = prepare_shards(tiny_dataset, str(shards))  # resumable: nothing to redo
    assert again.prepared == 0
    assert ShardIndex.read(open_storage(shards)) == index


def test_webdataset_reads_the_shards(shards):
    webdataset = pytest.importorskip("webdataset")
    first = ShardIndex.read(open_storage(shards)).subsets["train"][0]
    samples = list(webdataset.WebDataset(str(shards / first.name), shardshuffle=False))
    assert [json.loads(s["json"])["video"] for s in samples] == first.videos
    assert samples[0]["frames"][:8] == b"VIDTLFS1"


# --- reading -------------------------------------------------------------------------------

@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_loader_delivers_the_plan(shards, num_workers):
    module = stream_module(shards, num_workers=num_workers)
    stream = module.dataset("train")
    loader = module.dataloader("train")
    records = stream.records
    for epoch in (0, 1):
        got = [batch[1].tolist() for batch in loader]
        expected = [[records[n].label for n in b]
                    for b in delivery_order(worker_runs(stream.plan.batches(epoch),
                                                        num_workers))]
        assert got == expected and len(got) == len(loader) == 8
        assert loader.state_dict()["finished"]
    if num_workers:  # the workers' batches came through the reused shared-memory slots
        assert loader.batch_pool.pooled >= 12 and loader.batch_pool.unpooled <= 4


@pytest.mark.parametrize("workers_then,workers_now", [(2, 2), (2, 0)])
def test_resume_mid_epoch_reads_the_rest_exactly(shards, workers_then, workers_now):
    module = stream_module(shards, num_workers=workers_then)
    loader = module.dataloader("train")
    stream = module.dataset("train")
    reference = [stream.plan.batches(0).index(b)
                 for b in delivery_order(worker_runs(stream.plan.batches(0), workers_then))]
    iterator = iter(loader)
    first = [next(iterator)[1].tolist() for _ in range(3)]
    state = loader.state_dict()
    del iterator
    assert state["consumed"] == reference[:3] and not state["finished"]
    resumed = stream_module(shards, num_workers=workers_now)
    resumed_loader = resumed.dataloader("train")
    resumed_loader.load_state_dict(state)
    rest = [batch[1].tolist() for batch in resumed_loader]
    records, batches = stream.records, stream.plan.batches(0)
    expected_rest = [[records[n].label for n in batches[p]] for p in range(len(batches))
                     if p not in reference[:3]]
    assert sorted(rest) == sorted(expected_rest) and len(first + rest) == len(batches)
    assert resumed_loader.state_dict()["finished"]


def test_a_resume_in_a_later_epoch_reads_that_epochs_rest(shards):
    """Lightning makes the loader's first iterator after a restore before it restores its
    epoch count (the trainer says epoch 0 then): the checkpoint's epoch is read, not epoch 0's
    order again."""
    state = {"epoch": 1, "consumed": [0, 1, 2], "finished": False, "world_size": 1}
    loader = stream_module(shards).dataloader("train")
    loader.load_state_dict(state)
    stream = loader.dataset
    rest = [batch[1].tolist() for batch in loader]
    labels = [[stream.records[n].label for n in batch] for batch in stream.plan.batches(1)]
    assert rest == labels[3:] and labels[3:] != [[stream.records[n].label for n in batch]
                                                for batch in stream.plan.batches(0)][3:]
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["finished"]
    again = stream_module(shards).dataloader("train")  # a seed=null launch draws another
    again.dataset.replan(replace(again.dataset.plan, seed=2**63 + 5))
    again.load_state_dict({**state, "seed": stream.plan.seed})
    assert [batch[1].tolist() for batch in again] == rest  # the interrupted run's order


def test_each_test_video_once_with_views(shards):
    module = stream_module(shards, num_test_clips=2)
    seen = []
    for views, labels, videos in module.dataloader("test"):
        assert views.shape[1] == 2 and len(labels) == len(videos)
        seen += videos.tolist()
    assert sorted(seen) == list(range(len(module.dataset("test").records)))


def test_damaged_shard_is_skipped_and_listed(shards, tmp_path):
    import shutil

    store = shutil.copytree(shards, tmp_path / "store", ignore=shutil.ignore_patterns("_*"))
    damaged = store / "train-00002.tar"
    damaged.write_bytes(damaged.read_bytes()[:3000])  # truncated
    module = stream_module(store, num_workers=2)
    module.skipped.path = tmp_path / "skipped_videos.txt"
    batches = list(module.dataloader("train"))
    assert len(batches) == 8 and sum(len(b[1]) for b in batches) == 32  # none lost
    listed = module.skipped.read()
    assert list(listed) == [str(damaged)]
    assert "damaged shard" in listed[str(damaged)] and "truncated" in listed[str(damaged)]
    fail = stream_module(store, on_decode_error="fail")
    with pytest.raises(ShardReadError, match=r"train-00002.tar: 3000 bytes, the index says"):
        list(fail.dataloader("train"))


def test_a_folder_without_an_index_is_a_clear_error(tmp_path):
    with pytest.raises(ShardAccessError, match=r"shards.json does not exist: not a shard store"):
        stream_module(tmp_path).class_names  # noqa: B018
    with pytest.raises(ShardAccessError, match="local folder or at s3://"):
        open_storage("gs://bucket/x")


def test_train_from_a_local_stream(shards, tiny_dataset, tmp_path):
    cfg = compose_config("train", tiny_train_overrides(
        tmp_path, tiny_dataset, "data.source=stream", f"data.shards={shards}",
        "data.root=/nowhere", "data.num_workers=2"))
    metrics = train(cfg)
    assert metrics["skipped_videos"] == 0 and 0 <= metrics["test/top1"] <= 1


# --- S3 --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible HTTP server (moto's server mode) on a free localhost port."""
    server_module = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    yield env
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    return s3_server


def test_prepare_to_s3_and_train_from_it(s3_env, tiny_dataset, tmp_path):
    url = f"s3://{BUCKET}/ucf"
    prepare_shards(tiny_dataset, url, f"staging={tmp_path / 'staging'}")
    index = ShardIndex.read(open_storage(url))
    assert sum(len(s) for s in index.subsets["train"]) == 32
    cfg = compose_config("train", tiny_train_overrides(
        tmp_path / "run", tiny_dataset, "data.source=stream", f"data.shards={url}",
        "data.num_workers=2", "trainer.limit_train_batches=null"))
    metrics = train(cfg)
    assert metrics["skipped_videos"] == 0 and 0 <= metrics["val/top1"] <= 1


def test_s3_errors_name_the_url_and_what_to_check(s3_env, monkeypatch, tmp_path):
    with pytest.raises(ShardAccessError, match=rf"s3://{BUCKET}/nothing/shards.json does not "
                                               r"exist: not a shard store"):
        ShardIndex.read(open_storage(f"s3://{BUCKET}/nothing"))
    with pytest.raises(ShardAccessError, match=r"s3://no-such-bucket-here/x/shards.json: the "
                                               r"bucket does not exist"):
        ShardIndex.read(open_storage("s3://no-such-bucket-here/x"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ShardAccessError, match=r"s3://vidtl-shards/ucf/shards.json: cannot reach"
                                               r" http://127.0.0.1:9"):
        ShardIndex.read(open_storage(f"s3://{BUCKET}/ucf"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env["AWS_ENDPOINT_URL"])
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ShardAccessError, match=r"s3://vidtl-shards/ucf/shards.json: no AWS "
                                               r"credentials found"):
        ShardIndex.read(open_storage(f"s3://{BUCKET}/ucf"))


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.train", f"hydra.run.dir={tmp_path}", "data.source=stream",
         f"data.shards={tmp_path / 'none'}"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {tmp_path / 'none' / 'shards.json'} does not exist" in result.stderr


# --- two processes ----------------------------------------------------------------------------

@pytest.mark.slow
def test_two_process_ddp_reads_each_video_once(shards, tiny_dataset, tiny_checkpoint, tmp_path):
    """CPU DDP (gloo), 2 ranks: training steps over half the store each; evaluation of the
    test set predicts every video exactly once (no padding, no repeat)."""
    import csv

    import torch

    env = {**os.environ, "WANDB_MODE": "disabled"}
    run = tmp_path / "train"
    overrides = [o.replace("paths.output_dir", "hydra.run.dir") for o in tiny_train_overrides(
        run, tiny_dataset, "data.source=stream", f"data.shards={shards}", "data.root=/nowhere",
        "data.num_workers=1", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.limit_train_batches=null", "trainer.max_epochs=2", "test=false")]
    result = subprocess.run([sys.executable, "-m", "vidtl.cli.train", *overrides],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # 32 training videos, 2 ranks, batches of 4: 4 steps an epoch each (one rank alone: 8)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "vidtl.cli.evaluate", f"ckpt_path={tiny_checkpoint}",
         f"paths.output_dir={out}", "subsets=[test]", "data.source=stream",
         f"data.shards={shards}", "data.num_workers=1", "data.batch_size=3",
         "data.num_test_clips=2", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         "logger=none"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    with open(out / "predictions.csv") as file:
        videos = [row["video"] for row in csv.DictReader(file)]
    test_videos = ShardIndex.read(open_storage(shards)).records("test")
    assert sorted(videos) == sorted(str(r.path) for r in test_videos)  # 16, each once
