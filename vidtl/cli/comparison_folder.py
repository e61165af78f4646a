"""The folder of one ``vidtl-compare`` comparison: its settings, its lock, how its paths reach
Hydra.

``compare.json`` keeps the overrides the comparison runs with, so that the same command with
the same ``--out`` continues it and other settings are refused; ``compare.lock`` names the
running ``vidtl-compare`` and its training process, so that a second comparison in the same
folder (a rerun while a killed comparison's training still runs) is refused. Both are read as
files vidtl did not write: anything unexpected in them is treated as "not this comparison's".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidtl.core.atomic import process_alive, write_text_atomic
from vidtl.core.errors import UserError
from vidtl.core.safe_files import RefusedFileError, read_text

PLAN = "compare.json"
LOCK = "compare.lock"
SMALL = 1 << 20  # both files are a few lines; a larger one is not this comparison's


def settings(overrides: list[str]) -> dict[str, str]:
    """What overrides set, key by key (a key given twice keeps its last value, as Hydra
    does), so that the same settings in another order compare equal."""
    return dict(override.split("=", 1) if "=" in override else (override, "")
                for override in overrides)


def path_value(path: Path) -> str:
    """``path`` as a Hydra override value (quoted: spaces, commas and brackets stay literal)."""
    text = str(path)
    if any(char in text for char in "$'\\"):
        raise UserError(f"{text}: vidtl-compare cannot pass a path that holds $, ' or \\ to "
                        "vidtl-train; give another --out")
    return f"'{text}'"


def check_folder(out: Path, overrides: list[str]) -> None:
    """Refuse a folder that cannot hold this comparison (before anything is measured): a
    file, a path Hydra cannot take, or a comparison with other settings."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    path_value(out.resolve())
    plan = out / PLAN
    if not plan.exists():
        return
    try:
        earlier = json.loads(read_text(plan, SMALL, "comparison settings")).get("overrides")
        before = settings([str(o) for o in earlier])
    except (OSError, ValueError, AttributeError, TypeError, RefusedFileError):
        raise UserError(f"{plan} cannot be read as a comparison's settings; give another "
                        "--out") from None
    now = settings(overrides)
    if before != now:
        changed = sorted(k for k in {**before, **now} if before.get(k) != now.get(k))
        detail = ", ".join(f"{k}: {before.get(k, '(not set)')} -> {now.get(k, '(not set)')}"
                           for k in changed)
        raise UserError(f"{out} holds a comparison with other settings ({detail}); give "
                        "another --out, or the same overrides to continue it")


def write_plan(out: Path, overrides: list[str]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / PLAN, json.dumps({"overrides": overrides}, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"cannot write {out / PLAN}: {error}") from None


class FolderLock:
    """``compare.lock`` while this process compares in ``out``; :meth:`running` records the
    training process it waits for."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.child: int | None = None

    def _holders(self) -> list[int]:
        try:
            held = json.loads(read_text(self.path, SMALL, "comparison lock"))
            pids = [held.get("pid"), held.get("child")]
        except (OSError, ValueError, AttributeError, RefusedFileError):
            return []
        return [p for p in pids if isinstance(p, int) and not isinstance(p, bool) and p > 0]

    def __enter__(self) -> FolderLock:
        alive = [p for p in self._holders() if p != os.getpid() and process_alive(p)]
        if alive:
            raise UserError(f"{self.path.parent} is in use by process {alive[0]} (another "
                            "vidtl-compare or the training it started); wait for it or stop "
                            "it, then run this again")
        self._write()
        return self

    def running(self, child: int | None) -> None:
        self.child = child
        self._write()

    def _write(self) -> None:
        write_text_atomic(self.path, json.dumps({"pid": os.getpid(), "child": self.child}))

    def __exit__(self, *_: object) -> None:
        if self._holders()[:1] == [os.getpid()]:  # only the lock this process wrote
            self.path.unlink(missing_ok=True)


def recorded_minutes(run_dir: Path) -> float | None:
    """A finished run's minutes from its files: Hydra writes ``.hydra/config.yaml`` when it
    starts, vidtl writes ``metrics.json`` when it ends (``None`` when they say nothing sane,
    a copied folder for one)."""
    try:
        start = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
        minutes = ((run_dir / "metrics.json").stat().st_mtime - start) / 60
    except OSError:
        return None
    return minutes if minutes > 0 else None
