"""Smooth random textures for the generated datasets."""

from __future__ import annotations

import numpy as np


def value_noise(rng: np.random.Generator, height: int, width: int, cells: int,
                channels: int | None = None) -> np.ndarray:
    """Value noise in [0, 1]: random values on a ``cells`` x ``cells`` grid, bilinearly
    upsampled to ``(height, width)``, or ``(height, width, channels)`` when ``channels`` is
    given (one grid draw either way, so a seed gives the same texture every time)."""
    shape = (cells + 1, cells + 1) if channels is None else (cells + 1, cells + 1, channels)
    grid = rng.random(shape)
    ys = np.linspace(0, cells, height, endpoint=False)
    xs = np.linspace(0, cells, width, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    if channels is not None:
        fy, fx = fy[..., None], fx[..., None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
