"""The manifest of a folder that ``vidtl-prepare`` wrote: which mode and settings made it.

Readers check it before they trust a folder (``data.source=frames`` needs a frame store); the
preparation refuses to add to a folder made with other settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vidtl.core.atomic import write_text_atomic
from vidtl.core.errors import UserError
from vidtl.core.safe_files import read_text

MODES = ("frames", "reencode")
MANIFEST = "vidtl_prepare.json"


@dataclass(frozen=True)
class PrepareSettings:
    """What a prepared folder holds; stored in its manifest."""

    mode: str = "frames"
    short_side: int | None = 256
    quality: int = 90  # JPEG quality (frames)
    fps: float | None = None  # keep this frame rate (frames; None: every frame)
    keyframe_interval: int = 16  # frames between keyframes (reencode)
    crf: int = 20  # H.264 constant rate factor (reencode)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.fps is not None and self.mode != "frames":
            raise ValueError("fps (a reduced frame rate) applies to mode=frames only")


def read_manifest(folder: Path, expected_mode: str | None = None) -> PrepareSettings:
    """The settings of a prepared folder (raises ``FileNotFoundError`` if it is not one)."""
    path = folder / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{folder} is not a folder prepared by vidtl-prepare (no {MANIFEST})")
    try:
        fields = json.loads(read_text(path, 2**20, "manifest"))
        settings = PrepareSettings(**{k: v for k, v in fields.items() if k != "data_root"})
    except (ValueError, TypeError, AttributeError, RecursionError) as error:
        if isinstance(error, UserError):
            raise
        raise UserError(f"{path} is not a vidtl-prepare manifest (expected the settings "
                        f"{sorted(asdict(PrepareSettings()))})") from None
    if expected_mode is not None and settings.mode != expected_mode:
        raise ValueError(f"{folder} was prepared with mode={settings.mode}, "
                         f"not mode={expected_mode}")
    return settings


def write_manifest(folder: Path, settings: PrepareSettings, data_root: Path) -> None:
    """Record ``settings``; refuse a folder prepared with other settings, and a folder that
    holds anything but was not prepared by vidtl (vidtl writes into its own folders only)."""
    path = folder / MANIFEST
    if not os.path.lexists(path) and folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(
            f"{folder} is not empty and was not prepared by vidtl-prepare (no {MANIFEST}); "
            f"prepare into a new or empty folder, or one vidtl-prepare made")
    if os.path.lexists(path):
        existing = read_manifest(folder)
        if existing != settings:
            changed = {k: (v, getattr(settings, k)) for k, v in asdict(existing).items()
                       if v != getattr(settings, k)}
            raise FileExistsError(
                f"{folder} was prepared with other settings ({changed}, as (was, now)); "
                f"use another output folder or the same settings"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({**asdict(settings), "data_root": str(data_root)},
                                       indent=2) + "\n")


