"""Where vidtl's Hydra configs are: packaged in a wheel, or ``conf/`` of a checkout."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """The folder of vidtl's Hydra configs."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return str(packaged if packaged.is_dir() else package.parent / "conf")
