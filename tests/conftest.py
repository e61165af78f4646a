"""Shared fixtures: real encoded videos written to temporary folders."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from helpers import TINY_SPEC, tiny_train_overrides

from vidtl.data.tools.synthetic import ensure_synthetic_dataset

os.environ.setdefault("WANDB_MODE", "disabled")

SHARED = Path(os.environ.get("VIDTL_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SHARED_VIDEOS = SHARED / "videos"


def shared_folder(folder: Path) -> Path:
    """``folder`` of the shared data. Where it is absent the test is skipped (a user's clone has
    no ../shared), except under CI=true: there a missing folder fails the test, so CI cannot stay
    green without it."""
    if not folder.is_dir():
        message = f"{folder} is not present (set VIDTL_SHARED to the shared folder)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The real clips in ../shared/videos (or $VIDTL_SHARED/videos); see shared_folder."""
    return shared_folder(SHARED_VIDEOS)


@pytest.fixture(scope="session")
def shared_ucf101() -> Path:
    """The real UCF101 subset in ../shared/data/ucf101_subset20 (or under $VIDTL_SHARED); see
    shared_folder."""
    return shared_folder(SHARED / "data" / "ucf101_subset20")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny synthetic dataset in UCF101 layout (read-only for tests)."""
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("tiny") / "synthetic", TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``last.ckpt`` of a tiny training run on the tiny dataset (no test, no logger)."""
    from hydra import compose, initialize_config_dir

    from vidtl.cli import config_dir
    from vidtl.cli.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=tiny_train_overrides(
            out, tiny_dataset, "test=false", "logger=none"))
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture()
def deadline():
    """Fail the test (instead of hanging the suite) if it blocks for 20 s."""
    def hung(signum, frame):
        raise TimeoutError("blocked: a read that should have been refused hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture()
def connections(monkeypatch):
    """Every socket connection and name lookup tried in the test, each refused."""
    tried: list[object] = []

    def refuse(*args, **kwargs):
        tried.append(args[-1] if args else kwargs)
        raise ConnectionRefusedError("the test blocks sockets")

    for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                        (socket, "getaddrinfo"), (socket, "create_connection")):
        monkeypatch.setattr(owner, name, refuse)
    return tried
