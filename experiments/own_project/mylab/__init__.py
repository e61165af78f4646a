"""An example research package built on vidtl (see ../README.md)."""
