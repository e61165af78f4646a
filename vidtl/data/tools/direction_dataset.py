"""A direction-only video dataset: a textured patch moving left, right, up or down.

The patch moves at constant speed over a static textured background and wraps around the
frame's edges (the scene is a torus), starting at a uniformly random position: every single
frame of every class has the patch at a uniformly distributed place, so no frame on its own
tells the class; only the order of frames does. An order-blind model (average pooling of frame
features) stays at chance (25%).

Written in the ``folder`` layout (``<root>/{train,test}/<class>/<video>.avi``), MPEG-4 with
PyAV. Generation is deterministic from the seed and cached by a marker holding the spec.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vidtl.data.tools.synthetic import write_video
from vidtl.data.tools.value_noise import value_noise

MARKER = ".vidtl_direction.json"
DIRECTIONS: dict[str, tuple[int, int]] = {  # (dy, dx) sign of the motion
    "down": (1, 0),
    "left": (0, -1),
    "right": (0, 1),
    "up": (-1, 0),
}


@dataclass(frozen=True)
class DirectionSpec:
    """``train_per_class`` + ``test_per_class`` videos of each of the four directions."""

    train_per_class: int = 18
    test_per_class: int = 6
    num_frames: int = 32
    size: int = 112
    patch: int = 32
    speed: float = 3.0  # pixels per frame
    fps: int = 25
    seed: int = 0


def render_direction_video(spec: DirectionSpec, direction: str, index: int,
                           subset: str) -> np.ndarray:
    """uint8 frames ``(T, size, size, 3)`` of one video moving in ``direction``."""
    dy, dx = DIRECTIONS[direction]
    rng = np.random.default_rng([spec.seed, ["train", "test"].index(subset),
                                 list(DIRECTIONS).index(direction), index])
    size, patch = spec.size, spec.patch
    background = 0.15 + 0.7 * value_noise(rng, size, size, 5, channels=3)
    texture = value_noise(rng, patch, patch, 3, channels=3)
    stripes = (np.sin(np.arange(patch) * rng.uniform(0.5, 1.2))[:, None] > 0)[..., None]
    texture = np.where(stripes, texture, 1.0 - texture)  # high contrast, tells it from the scene
    start = rng.uniform(0, size, 2)
    frames = np.empty((spec.num_frames, size, size, 3), dtype=np.uint8)
    for t in range(spec.num_frames):
        top, left = (start + spec.speed * t * np.array([dy, dx])).astype(int) % size
        canvas = np.zeros((size, size, 3))
        mask = np.zeros((size, size, 1), dtype=bool)
        canvas[:patch, :patch], mask[:patch, :patch] = texture, True
        canvas = np.roll(canvas, (top, left), axis=(0, 1))  # wraps around the edges
        mask = np.roll(mask, (top, left), axis=(0, 1))
        image = np.where(mask, canvas, background) + rng.normal(0, 0.01, (size, size, 1))
        frames[t] = np.clip(image * 255, 0, 255).astype(np.uint8)
    return frames


def ensure_direction_dataset(root: str | Path, spec: DirectionSpec | None = None) -> Path:
    """Write the dataset at ``root`` unless a complete one from the same spec is there."""
    spec = spec or DirectionSpec()
    root = Path(root).expanduser().resolve()
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()) == asdict(spec):
        return root
    shutil.rmtree(root, ignore_errors=True)
    staging = root.parent / f".{root.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for subset, count in (("train", spec.train_per_class), ("test", spec.test_per_class)):
        for direction in DIRECTIONS:
            folder = staging / subset / direction
            folder.mkdir(parents=True)
            for index in range(count):
                frames = render_direction_video(spec, direction, index, subset)
                write_video(folder / f"{direction}_{index:03d}.avi", frames, spec.fps, "mpeg4")
    (staging / MARKER).write_text(json.dumps(asdict(spec), indent=2))
    staging.rename(root)
    return root
