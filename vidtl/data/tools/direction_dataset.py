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

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vidtl.data.tools.generated_folder import ensure_generated
from vidtl.data.tools.synthetic import LIMITS, MAX_VIDEO_BYTES, check_limits, write_video
from vidtl.data.tools.value_noise import value_noise

MARKER = ".vidtl_direction.json"
FILE_NAMES = re.compile(r"(train|test)/(down|left|right|up)/\2_\d{3}\.avi")
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

    def __post_init__(self) -> None:
        check_limits(self, {"train_per_class": (1, 999), "test_per_class": (1, 999),
                            "num_frames": LIMITS["num_frames"], "size": LIMITS["width"],
                            "patch": (1, self.size), "fps": LIMITS["fps"], "seed": LIMITS["seed"]})
        if self.num_frames * self.size * self.size * 3 > MAX_VIDEO_BYTES:
            raise ValueError(f"a direction video of {self.num_frames} frames of {self.size} px "
                             f"takes more than {MAX_VIDEO_BYTES // 2**20} MiB; make it smaller")


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


def _generate(folder: Path, spec: DirectionSpec) -> None:
    for subset, count in (("train", spec.train_per_class), ("test", spec.test_per_class)):
        for direction in DIRECTIONS:
            videos = folder / subset / direction
            videos.mkdir(parents=True)
            for index in range(count):
                frames = render_direction_video(spec, direction, index, subset)
                write_video(videos / f"{direction}_{index:03d}.avi", frames, spec.fps, "mpeg4")


def ensure_direction_dataset(root: str | Path, spec: DirectionSpec | None = None) -> Path:
    """Write the dataset at ``root`` unless a complete one from the same spec is there (a
    folder made from another spec is replaced only when it holds nothing but what vidtl wrote:
    :mod:`vidtl.data.tools.generated_folder`)."""
    spec = spec or DirectionSpec()
    return ensure_generated(root, MARKER, asdict(spec), lambda folder: _generate(folder, spec),
                            "direction-only dataset", FILE_NAMES)
