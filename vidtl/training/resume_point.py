"""Where a training run resumes: the checkpoint it continues (``resume=auto``, ``ckpt_path=``),
read once, safely, for what the run needs of it: its path, its ``vidtl`` record (the saved
config and classes) and its global step. The run then says what its settings change
(:mod:`vidtl.callbacks.resume_changes`) and refuses a resume onto data of other classes,
pointing to ``init_from`` (:mod:`vidtl.inference.transfer`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtl.callbacks.resume_changes import (
    check_resume_changes,
    check_same_split,
    config_changes,
)
from vidtl.core.errors import UserError
from vidtl.core.quoting import quote
from vidtl.core.stored_config import plain_config
from vidtl.training.checkpoint_file import read_checkpoint

log = logging.getLogger(__name__)
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# The final weights, saved after training where those are what is evaluated: not a resume point
# (written after the fit ended, it would resume past the run's end).
FINAL_CHECKPOINT = Path("checkpoints") / "final.ckpt"


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run resumes from (``None``: a fresh start), its ``vidtl`` record and
    its global step."""

    path: str | None = None
    record: Any = None
    step: int | None = None


def resumable_checkpoints(output_dir: Path) -> list[Path]:
    """The checkpoints a run folder holds, newest first: ``checkpoints/*.ckpt`` (but
    ``final.ckpt``) and the ``hpc_ckpt_<n>.ckpt`` that Lightning writes when SLURM preempts a
    job."""
    found = [*(path for path in (output_dir / LAST_CHECKPOINT.parent).glob("*.ckpt")
               if path.name != FINAL_CHECKPOINT.name),
             *output_dir.glob("hpc_ckpt_*.ckpt")]
    return sorted(found, key=lambda path: path.stat().st_mtime, reverse=True)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def epoch_cut_short(checkpoint: dict[str, Any]) -> str | None:
    """What a resume from ``checkpoint`` leaves unread, when it was saved as
    ``trainer.max_steps`` ended an epoch early: Lightning counts that epoch as done (its loop
    state), while the training loader had read fewer batches than an epoch of that run has."""
    try:
        progress = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]
        record = checkpoint["vidtl"]
        max_steps = _count(record["config"]["trainer"].get("max_steps"))
        epoch_batches = _count(record.get("epoch_batches"))
        step = _count(checkpoint.get("global_step"))
        if not (progress["processed"] > progress["completed"] and max_steps and step
                and max_steps <= step and epoch_batches):
            return None
        loaders = [v.get("train_loader") for v in checkpoint.values() if isinstance(v, dict)]
        position = next((p for p in loaders if isinstance(p, dict)), {})
        consumed = position.get("consumed")
        read = _count(position.get("batches")) if "batches" in position else (
            len(consumed) if isinstance(consumed, list) else None)
    except (KeyError, TypeError, AttributeError):
        return None
    if read is None or read >= epoch_batches:
        return None
    return (f"it was saved when trainer.max_steps ended epoch {quote(position.get('epoch'))} "
            f"after {read} of its {epoch_batches} batches; Lightning counts that epoch as "
            f"done, so the resumed run starts the next one and the rest of it is not read")


def start_of(point: ResumePoint | None) -> tuple[int, str | None]:
    """The step a run starts at and the launch that saved its checkpoint (``(0, None)``: a
    fresh start), which every process of a run must share."""
    if point is None or point.path is None:
        return 0, None
    launch = point.record.get("launch_id") if isinstance(point.record, dict) else None
    plain = isinstance(launch, str) and 0 < len(launch) <= 64 and all(
        c in "0123456789abcdef" for c in launch)  # (from the file: only what vidtl writes)
    return point.step or 0, launch if plain else None


def _resume_point(path: str, checkpoint: dict[str, Any]) -> ResumePoint:
    cut_short = epoch_cut_short(checkpoint)
    if cut_short:
        log.warning("resuming from %s: %s", path, cut_short)
    step = checkpoint.get("global_step")
    return ResumePoint(path, checkpoint.get("vidtl"),
                       step if isinstance(step, int) and step >= 0 else None)


def resume_point(resume: str | None, ckpt_path: str | None, output_dir: Path,
                 max_gb: float | None = None) -> ResumePoint:
    """The checkpoint to resume, each read once: ``resume=auto``: the newest checkpoint of the
    run folder ``output_dir`` that can be read (a run that was interrupted; an unreadable one,
    truncated by a crash, is passed over with a warning), else ``ckpt_path`` (null: a fresh
    start)."""
    if resume is None:
        return readable(ckpt_path, max_gb)
    if resume != "auto":
        raise UserError(f"resume must be null or auto, got {resume!r} (ckpt_path=PATH starts "
                        f"from a given checkpoint)")
    candidates = resumable_checkpoints(output_dir)
    for candidate in candidates:
        try:
            checkpoint = read_checkpoint(candidate, max_gb)
        except UserError as error:
            log.warning("resume=auto: passing over %s", error)
            continue
        log.info("resume=auto: continuing from %s", candidate)
        return _resume_point(str(candidate), checkpoint)
    if candidates:
        raise UserError(f"resume=auto: none of the {len(candidates)} checkpoints in {output_dir} "
                        f"can be read ({', '.join(p.name for p in candidates)}); move them away "
                        f"to start afresh, or set ckpt_path=PATH")
    log.info("resume=auto: no checkpoint in %s yet; starting %s", output_dir,
             f"from {ckpt_path}" if ckpt_path else "afresh")
    return readable(ckpt_path, max_gb)


def readable(ckpt_path: str | None, max_gb: float | None = None) -> ResumePoint:
    """The resume point of ``ckpt_path``, once it has been read safely (a clear error for a
    missing, damaged or pickled file before Lightning, which also loads it with
    ``weights_only=True``)."""
    if ckpt_path is None:
        return ResumePoint()
    path = Path(str(ckpt_path)).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint")
    return _resume_point(ckpt_path, read_checkpoint(path, max_gb))


def resumed_changes(point: ResumePoint, current: Mapping[str, Any], mode: str) -> bool:
    """When resuming (``point``) with the resolved config ``current``: log what this run
    changes, refuse or apply optimizer and schedule changes (``resume_changes=mode``, see
    :mod:`vidtl.callbacks.resume_changes`); whether the optimizer must be built anew."""
    checkpoint_path, record = point.path, point.record
    if checkpoint_path is None or not isinstance(record, dict):
        return False  # a fresh start, or not vidtl's checkpoint: nothing to compare with
    saved = plain_config(record.get("config"), checkpoint_path)
    if not isinstance(saved, dict):
        return False
    check_same_split(saved, current, checkpoint_path)
    changes = config_changes(saved, current)
    return check_resume_changes(changes, mode, checkpoint_path)


def check_same_classes(point: ResumePoint, num_classes: int) -> None:
    """A run resumes with its classes: a checkpoint of another number of classes is refused,
    pointing to ``init_from`` (its weights with a new head)."""
    saved = point.record.get("class_names") if isinstance(point.record, dict) else None
    if point.path is not None and isinstance(saved, list) and len(saved) != num_classes:
        raise UserError(f"{point.path} is a model of {len(saved)} classes and this data has "
                        f"{num_classes}: a run resumes with its classes; to start from "
                        f"its weights with a new head, use init_from={point.path}")
