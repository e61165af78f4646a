"""A small synthetic video dataset in the exact UCF101 layout, where time matters.

Eight classes of textured objects on textured backgrounds. Three pairs differ only in the order
of their frames: each "reversed" class is drawn as its partner's video played backwards (left vs
right, clockwise vs counter-clockwise, zoom in vs out), so an order-blind model (TSN average
pooling) cannot tell the two members of a pair apart and tops out at 5/8 accuracy; the other
classes differ in appearance. Videos of one group share a background and an object texture (like
UCF101's groups, which share actor and scene); train and test are split by group.

Files are real encoded video (MPEG-4 in AVI, or H.264 in MP4) written with PyAV. Generation is
deterministic from the seed, runs once, and is cached: a finished dataset holds a marker with its
spec and the files written; one made from another spec is made again, if it holds nothing else
(:mod:`vidtl.data.tools.generated_folder`). A spec is bounded (:data:`LIMITS`), so a config
(or a checkpoint) cannot ask for more than a small dataset.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vidtl.core.trusted_targets import rebuildable
from vidtl.data.tools.generated_folder import ensure_generated
from vidtl.data.tools.value_noise import value_noise

log = logging.getLogger(__name__)

MARKER = ".vidtl_synthetic.json"
# Every file the generator writes (what it may delete when it makes the dataset again).
FILE_NAMES = re.compile(r"ucfTrainTestlist/(classInd|trainlist0[123]|testlist0[123])\.txt|"
                        r"([A-Za-z]+)/v_\2_g\d\d_c\d\d\.(avi|mp4)")
# Bump when the drawing changes, so that cached datasets are made again.
GENERATOR_VERSION = 1

# What a spec may ask for: (smallest, largest) of each field, and frames of one video in bytes.
LIMITS = {"groups": (2, 99), "clips_per_group": (1, 99), "num_frames": (1, 2000),
          "width": (16, 4096), "height": (16, 4096), "fps": (1, 240), "seed": (0, 2**32 - 1)}
MAX_VIDEO_BYTES = 512 * 2**20
MAX_DATASET_BYTES = 16 * 2**30  # frames in all, before encoding (the default spec: 0.3 GiB)


def check_limits(spec: object, limits: dict[str, tuple[int, int]]) -> None:
    """A ``ValueError`` naming the first field of ``spec`` outside its ``limits`` (or not an
    integer)."""
    for name, (low, high) in limits.items():
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{type(spec).__name__}.{name} must be an integer from {low} to "
                             f"{high}, got {value!r}")


# (class name, motion, shape, played backwards)
CLASSES: tuple[tuple[str, str, str, bool], ...] = (
    ("MoveRight", "translate", "disc", False),
    ("MoveLeft", "translate", "disc", True),
    ("RotateClockwise", "rotate", "square", False),
    ("RotateCounterClockwise", "rotate", "square", True),
    ("ZoomIn", "zoom", "star", False),
    ("ZoomOut", "zoom", "star", True),
    ("BounceTriangle", "bounce", "triangle", False),
    ("PulseRing", "pulse", "ring", False),
)


@rebuildable("data")
@dataclass(frozen=True)
class SyntheticVideoSpec:
    """What to generate: ``groups`` x ``clips_per_group`` videos per class."""

    groups: int = 8
    clips_per_group: int = 4
    num_frames: int = 32
    width: int = 128
    height: int = 96
    fps: int = 25
    codec: str = "mpeg4"  # "mpeg4" (.avi, like UCF101) or "h264" (.mp4)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.codec not in ("mpeg4", "h264"):
            raise ValueError(f"codec must be 'mpeg4' or 'h264', got {self.codec!r}")
        if self.groups < 2:
            raise ValueError("groups must be >= 2 so that train and test can be split by group")
        check_limits(self, LIMITS)
        video = self.num_frames * self.width * self.height * 3
        if video > MAX_VIDEO_BYTES or video * len(CLASSES) * self.groups * \
                self.clips_per_group > MAX_DATASET_BYTES:
            raise ValueError(f"a synthetic dataset of {self.groups} x {self.clips_per_group} "
                             f"videos a class of {self.num_frames} frames of {self.width}x"
                             f"{self.height} takes more than {MAX_VIDEO_BYTES >> 20} MiB of "
                             f"frames a video or {MAX_DATASET_BYTES >> 30} GiB in all (frames "
                             f"x width x height x 3 bytes); make it smaller")

    @property
    def extension(self) -> str:
        return ".avi" if self.codec == "mpeg4" else ".mp4"

    @property
    def class_names(self) -> list[str]:
        return [c[0] for c in CLASSES]

    def test_groups(self, split: int) -> set[int]:
        """Groups (1-based) held out for testing in split 1, 2 or 3, like UCF101's 7 of 25."""
        count = max(1, round(self.groups * 7 / 25))
        start = ((split - 1) * count) % self.groups
        return {(start + i) % self.groups + 1 for i in range(count)}


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    if shape == "disc":
        return r < 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.8
    if shape == "star":
        return r < 0.55 + 0.4 * np.cos(5 * np.arctan2(v, u))
    if shape == "triangle":
        return (v < 0.6) & (v > -1.0 + 1.8 * np.abs(u))
    if shape == "ring":
        return (r < 1.0) & (r > 0.6)
    raise ValueError(shape)


def motion_path(spec: SyntheticVideoSpec, label: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame centre x, centre y, scale and angle (radians; growing = clockwise on screen)."""
    _, motion, _, backwards = CLASSES[label]
    h, w, t = spec.height, spec.width, spec.num_frames
    speed = rng.uniform(0.6, 1.0)  # fraction of the full motion covered by the clip
    phase = rng.uniform(0, 2 * np.pi)
    cx0, cy0 = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    angle0 = rng.uniform(0, 2 * np.pi)
    time = np.linspace(0.0, 1.0, t)
    cx, cy, scale, angle = np.full(t, cx0), np.full(t, cy0), np.ones(t), np.full(t, angle0)
    if motion == "translate":
        cx = cx0 + (time - 0.5) * speed * 0.6 * w
    elif motion == "rotate":
        angle = angle0 + time * speed * 1.5 * np.pi
    elif motion == "zoom":
        scale = 0.55 + time * speed * 1.2
    elif motion == "bounce":
        cy = cy0 + 0.25 * h * np.sin(phase + time * speed * 4 * np.pi)
    elif motion == "pulse":
        scale = 1.0 + 0.35 * np.sin(phase + time * speed * 4 * np.pi)
    if backwards:  # the partner class played backwards
        cx, cy, scale, angle = cx[::-1], cy[::-1], scale[::-1], angle[::-1]
    return cx, cy, scale, angle


def render_video(spec: SyntheticVideoSpec, label: int, group: int, clip: int) -> np.ndarray:
    """uint8 frames ``(T, H, W, 3)`` of one video of class ``label``."""
    shape = CLASSES[label][2]
    h, w, t = spec.height, spec.width, spec.num_frames
    scene = np.random.default_rng([spec.seed, group])  # shared by the group: scene and texture
    own = np.random.default_rng([spec.seed, label, group, clip])  # this video's variations

    background = np.stack([value_noise(scene, h, w, 6) for _ in range(3)], -1)
    background = 0.25 + 0.5 * background * scene.uniform(0.5, 1.0, 3)
    stripes = scene.uniform(4.0, 8.0)
    colour_a = own.uniform(0.6, 1.0, 3) * scene.uniform(0.6, 1.0, 3)
    colour_b = own.uniform(0.0, 0.35, 3)

    size = own.uniform(0.17, 0.27) * h
    cx, cy, scale, angle = motion_path(spec, label, own)

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = np.empty((t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        dx, dy = xs - cx[i], ys - cy[i]
        c, s = np.cos(angle[i]), np.sin(angle[i])
        u = (dx * c + dy * s) / (size * scale[i])
        v = (-dx * s + dy * c) / (size * scale[i])
        mask = _shape_mask(shape, u, v)[..., None]
        # Stripes plus a brighter half: the texture has no rotational symmetry.
        pattern = (np.sin(stripes * v) > 0) ^ (u > 0.25)
        texture = np.where(pattern[..., None], colour_a, colour_b)
        image = np.where(mask, texture, background)
        frames[i] = np.clip(image * 255 + own.normal(0, 2.0, (h, w, 1)), 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encode uint8 ``(T, H, W, 3)`` frames to ``path`` with PyAV: ``codec`` is ``h264``,
    ``vp9`` (for ``.webm``, as Something-Something v2) or ``mpeg4``."""
    import av

    encoders = {"h264": "libx264", "vp9": "libvpx-vp9"}
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoders.get(codec, "mpeg4"), rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "h264":
            stream.options = {"crf": "20", "g": "16"}
        elif codec == "vp9":
            stream.options = {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        else:
            stream.bit_rate = 2_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _marker(spec: SyntheticVideoSpec) -> dict:
    return {"generator_version": GENERATOR_VERSION, **asdict(spec)}


def _generate(root: Path, spec: SyntheticVideoSpec) -> None:
    from rich.progress import track

    names = spec.class_names
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    entries: list[tuple[str, int, int]] = []
    jobs = [
        (label, group, clip)
        for label in range(len(names))
        for group in range(1, spec.groups + 1)
        for clip in range(1, spec.clips_per_group + 1)
    ]
    for label, group, clip in track(jobs, description="generating synthetic videos"):
        name = names[label]
        relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}{spec.extension}"
        (root / name).mkdir(exist_ok=True)
        write_video(root / relative, render_video(spec, label, group, clip), spec.fps, spec.codec)
        entries.append((relative, label, group))
    for split in (1, 2, 3):
        test = spec.test_groups(split)
        train_lines = [f"{r} {label + 1}\n" for r, label, g in entries if g not in test]
        test_lines = [f"{r}\n" for r, _, g in entries if g in test]
        (lists / f"trainlist0{split}.txt").write_text("".join(train_lines))
        (lists / f"testlist0{split}.txt").write_text("".join(test_lines))


def ensure_synthetic_dataset(root: str | Path, spec: SyntheticVideoSpec | None = None) -> Path:
    """Generate the dataset at ``root`` unless a complete one from the same spec is there
    (:func:`~vidtl.data.tools.generated_folder.ensure_generated`: a folder made from another
    spec is replaced only when it holds nothing but the files vidtl wrote in it)."""
    spec = spec or SyntheticVideoSpec()
    return ensure_generated(root, MARKER, _marker(spec), lambda folder: _generate(folder, spec),
                            "vidtl synthetic dataset", FILE_NAMES)
