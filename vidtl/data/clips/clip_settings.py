"""The ``data.*`` keys that say how each clip is made: sampling, decoding, the frame source,
the spatial transforms and the test views (see ``conf/data/base.yaml`` for each key's
meaning). The clip length (``num_frames``) has one route to the model: from these settings
through the clip pipeline (:attr:`~vidtl.data.clips.pipeline.ClipPipeline.num_frames`) to the
model's builder, and from a checkpoint's saved data config the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidtl.core.errors import UserError
from vidtl.core.settings import CHOICE, GEOMETRY, LOADER_ONLY, LOCATION, MACHINE, setting
from vidtl.data.clips.transforms import TRAIN_CROPS


@dataclass(frozen=True)
class ClipSettings:
    """Sampler, decoder, frame source, transforms, test views and decode-error handling."""

    sampler: Any = setting("segment", CHOICE, GEOMETRY)
    num_frames: int = setting(8, GEOMETRY)
    frame_interval: int = setting(1, GEOMETRY)
    crop_size: int = setting(224, GEOMETRY)
    short_side: int = setting(256, GEOMETRY)
    num_test_clips: int = setting(1)
    num_test_crops: int = setting(1)
    train_crop: str = setting("multi_scale")
    flip: bool = setting(True)
    backend: Any = setting("decord", CHOICE)
    decode_threads: int = setting(1, MACHINE, LOADER_ONLY)
    source: Any = setting("video", CHOICE)
    frames_root: str | None = setting(None, LOCATION)
    shards: str | None = setting(None, LOCATION)
    on_decode_error: str = setting("replace")

    def __post_init__(self) -> None:
        """The counts a clip is made of, checked with the key they came from."""
        for key in ("num_frames", "frame_interval"):
            if getattr(self, key) < 1:
                raise UserError(f"data.{key} must be >= 1, got {getattr(self, key)}")
        if self.decode_threads < 0:
            raise UserError(f"data.decode_threads must be >= 0 (0: the decoder's choice), got "
                            f"{self.decode_threads}")
        if self.train_crop not in TRAIN_CROPS:
            raise UserError(f"data.train_crop must be one of {TRAIN_CROPS}, got "
                            f"{self.train_crop!r}")
