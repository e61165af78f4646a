"""Videos for the timeline tests: solid-colour scenes of known classes, joined end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidtl.data.tools.synthetic import write_video

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def colour_frames(colour: str, num_frames: int, seed: int, width: int = 64,
                  height: int = 48) -> np.ndarray:
    """Frames of one colour with noise: a class any model tells apart at once."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, (num_frames, height, width, 3))
    return np.clip(np.array(COLOURS[colour], dtype=np.int16) + noise, 0, 255).astype(np.uint8)


def write_colour_dataset(root: Path) -> Path:
    """A folder-layout dataset of the three colours (train, val, test)."""
    for split, count in (("train", 4), ("val", 2), ("test", 1)):
        for k, colour in enumerate(COLOURS):
            for i in range(count):
                folder = root / split / colour
                folder.mkdir(parents=True, exist_ok=True)
                write_video(folder / f"{colour}_{i}.mp4",
                            colour_frames(colour, 12, 100 * k + 10 * i + len(split)), fps=25,
                            codec="mpeg4")
    return root


def write_long_video(path: Path, scenes: list[tuple[str, float]], fps: int = 25,
                     codec: str = "h264") -> list[tuple[str, float, float]]:
    """One video of ``scenes`` (colour, seconds) end to end; the true (colour, start, end)."""
    frames, truth, start = [], [], 0.0
    for i, (colour, seconds) in enumerate(scenes):
        frames.append(colour_frames(colour, round(seconds * fps), 1000 + i, 96, 72))
        truth.append((colour, start, start + seconds))
        start += seconds
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, np.concatenate(frames), fps=fps, codec=codec)
    return truth
