"""Command-line entry points: each parses its Hydra config and hands it to :mod:`vidtl.assembly`."""

from vidtl.assembly.config_files import config_dir

__all__ = ["config_dir"]
