"""A property of every checkpoint vidtl loads, tried on crafted ones: interpolations, targets
and path tricks planted in every key of a real checkpoint's config (and in a new key beside
them), each loaded as a user would (``vidtl.load``, and the dataset its config names read as
``vidtl-eval`` reads it).

For every crafted file: nothing outside the run's own folder changes, no socket opens, no
environment value appears in any output, and the load either works unchanged (the same scores
as the real checkpoint) or stops with one line. The fast suite tries a seeded sample of the
(key, payload) pairs; ``pytest -m slow`` tries them all.
"""

from __future__ import annotations

import copy
import os
import random
import signal
from pathlib import Path

import pytest
import torch

import vidtl
from vidtl.assembly.checkpoint_data import checkpoint_data
from vidtl.assembly.data import dataset_spec
from vidtl.cli.errors import one_line
from vidtl.data.annotations.index import read_index

SECRET = "fuzz-secret-0c8e1d"
SAMPLE = 60


def places(config: dict, path: tuple = ()) -> list[tuple]:
    """The path of every value of ``config``, and of a new key in every mapping."""
    found = [(*path, "vidtl_fuzz_new_key")]
    for key, value in config.items():
        if isinstance(value, dict):
            found += places(value, (*path, key))
        else:
            found.append((*path, key))
    return found


def payloads(sandbox: Path) -> dict[str, object]:
    source, copied, victim = sandbox / "source.txt", sandbox / "copied.txt", sandbox / "victim"
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    return {
        "env": "${oc.env:VIDTL_FUZZ_SECRET}",
        "env in a path": "/data/${oc.env:VIDTL_FUZZ_SECRET}/x",
        "escaped": f"\\${{oc.create:{{_target_: shutil.copyfile, _args_: [{source}, {copied}]}}}}",
        "target": {"_target_": "shutil.copyfile", "_args_": [str(source), str(copied)]},
        "target in a list": [{"_target_": "builtins.open", "_args_": [str(victim), "w"]}],
        "climbing path": "../../../../victim",
        "absolute path": str(victim),
        "device": "/dev/zero",
        "fifo": str(sandbox / "fifo"),
        "url": "http://127.0.0.1:9/weights.pth",
        "s3": "s3://attacker-bucket/store",
        "hub": "hf-hub:attacker/model",
        "huge number": 10**15,
        "deep": deep,
    }


def plant(config: dict, place: tuple, value: object) -> None:
    node = config
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = copy.deepcopy(value)


def snapshot(folder: Path) -> dict[str, tuple]:
    return {str(p.relative_to(folder)): (p.lstat().st_mode, p.read_bytes() if p.is_file() and
                                         not p.is_fifo() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def world(tiny_checkpoint, tmp_path_factory):
    """The real checkpoint, its scores on a fixed clip, and a sandbox of files to protect."""
    sandbox = tmp_path_factory.mktemp("sandbox")
    (sandbox / "source.txt").write_text("attacker")
    (sandbox / "victim").write_text("precious")
    os.mkfifo(sandbox / "fifo")
    real = vidtl.load(tiny_checkpoint, device="cpu")
    clip = torch.randint(0, 256, (real.num_frames, 48, 64, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    return checkpoint, real.probabilities(clip), clip, sandbox


def cases(config: dict, sandbox: Path) -> list[tuple[tuple, str]]:
    return [(place, name) for place in places(config) for name in payloads(sandbox)]


def try_case(world, place: tuple, name: str, folder: Path, capfd, caplog,
             connections) -> None:
    checkpoint, expected, clip, sandbox = world
    crafted = dict(checkpoint)
    crafted["vidtl"] = copy.deepcopy(checkpoint["vidtl"])
    plant(crafted["vidtl"]["config"], place, payloads(sandbox)[name])
    path = folder / "crafted.ckpt"
    torch.save(crafted, path)
    before = snapshot(sandbox)
    signal.alarm(20)  # a read that blocks is a failure, not a hang of the suite
    try:
        model = vidtl.load(path, device="cpu")
        scores = model.probabilities(clip)
        config = model.trained.config
        data = checkpoint_data(dict(config.data), {}, str(path))
        if config.data.get("source") != "stream":
            read_index(dataset_spec(data.config, data.quote_content))
        outcome = "loaded"
    except Exception as error:  # each refusal must be one line
        assert one_line(error) is not None, f"{place}={name}: {type(error).__name__}: {error}"
        message, outcome = str(error), "refused"
    finally:
        signal.alarm(0)
    if outcome == "loaded":
        assert torch.allclose(scores, expected), f"{place}={name} changed the scores"
    else:
        assert SECRET not in message
    assert snapshot(sandbox) == before, f"{place}={name} changed a file outside the run"
    assert not (sandbox / "copied.txt").exists()
    assert not connections, f"{place}={name} opened a connection: {connections}"
    seen = "".join(capfd.readouterr()) + caplog.text
    assert SECRET not in seen, f"{place}={name} showed the environment"
    caplog.clear()


@pytest.fixture()
def fuzzing(monkeypatch, tmp_path, connections):
    monkeypatch.setenv("VIDTL_FUZZ_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)  # files a load would create in the working folder stay here
    previous = signal.signal(signal.SIGALRM, _hung)
    yield connections
    signal.signal(signal.SIGALRM, previous)


def _hung(signum, frame):
    raise TimeoutError("blocked: a crafted checkpoint made a load hang")


def test_a_sample_of_crafted_checkpoints(world, tmp_path, capfd, caplog, fuzzing):
    every = cases(world[0]["vidtl"]["config"], world[3])
    sample = random.Random(23).sample(every, SAMPLE)
    for place, name in sample:
        try_case(world, place, name, tmp_path, capfd, caplog, fuzzing)


@pytest.mark.slow
def test_every_crafted_checkpoint(world, tmp_path, capfd, caplog, fuzzing):
    for place, name in cases(world[0]["vidtl"]["config"], world[3]):
        try_case(world, place, name, tmp_path, capfd, caplog, fuzzing)
