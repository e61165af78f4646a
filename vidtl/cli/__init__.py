"""Command-line entry points; the only place that calls ``hydra.utils.instantiate``."""

from pathlib import Path


def config_dir() -> str:
    """The folder of vidtl's Hydra configs: packaged in a wheel, or ``conf/`` of a checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return str(packaged if packaged.is_dir() else package.parent / "conf")
