"""vidtl's version (the same as pyproject.toml's), for checkpoints and exported models."""

__version__ = "0.5.0"
