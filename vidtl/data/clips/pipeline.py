"""The clip pipeline: sampler -> frame source -> transform, built once per run.

Training, validation, multi-view testing, ``vidtl-predict``, ``vidtl-extract`` and
``vidtl-bench-data`` all make their clips with one :class:`ClipPipeline`, so every choice
(which frames, which decoder, which crops) is made in one place. Where the work runs (worker
processes or threads, the device) is the loading plan's business
(:mod:`vidtl.data.loading.loading_plan`), not the pipeline's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from vidtl.core.errors import UserError
from vidtl.data.annotations.records import VideoRecord, subset_kind
from vidtl.data.clips.clip_settings import ClipSettings
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.data.clips.sampling import FrameSampler
from vidtl.data.clips.skipped_videos import SkippedVideoLog
from vidtl.data.clips.transforms import ClipTransform, EvalClipTransform, TrainClipTransform
from vidtl.data.frames.sources import FrameSource

SUBSETS = ("train", "val", "test")
# What one clip may take: a data config (or a checkpoint's) past these is a typo or an attack.
MAX_FRAMES = 4096
MAX_SIDE = 4096
MAX_CLIP_BYTES = 2**30
MAX_VIEW_CLIPS = 100
MAX_VIEWS_BYTES = 4 * 2**30


@dataclass(frozen=True)
class ViewsPerVideo:
    """Multi-view testing: ``num_clips`` temporal clips spread over each video x ``num_crops``
    crops (1: the centre; 3: start, centre and end of the long side)."""

    num_clips: int = 1
    num_crops: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.num_clips <= MAX_VIEW_CLIPS or self.num_crops not in (1, 3):
            raise UserError(f"data.num_test_clips must be from 1 to {MAX_VIEW_CLIPS} and "
                            f"data.num_test_crops 1 or 3, got {self.num_clips} and "
                            f"{self.num_crops}")


@dataclass(frozen=True)
class ClipPipeline:
    """How every clip of a run is made: ``sampler`` picks the frame indices, ``source`` reads
    those frames, then ``train_transform`` (random crop and flip), ``eval_transform`` (centre
    crop) or ``test_views`` (several clips and crops of one video) shape them.
    ``on_decode_error`` (replace, skip or fail) is what a clip that decodes only in part gets
    (see :class:`~vidtl.data.clips.dataset.VideoClipDataset`)."""

    sampler: FrameSampler
    source: FrameSource
    train_transform: TrainClipTransform = field(default_factory=TrainClipTransform)
    eval_transform: EvalClipTransform = field(default_factory=EvalClipTransform)
    test_views: ViewsPerVideo = field(default_factory=ViewsPerVideo)
    on_decode_error: str = ClipSettings.on_decode_error

    def __post_init__(self) -> None:
        """The size of a clip is bounded (a clip of ``MAX_CLIP_BYTES``, the views of a video
        ``MAX_VIEWS_BYTES``): a config cannot ask for clips no machine holds."""
        frames = self.sampler.num_frames
        crop = max(self.train_transform.crop_size, self.eval_transform.crop_size)
        if not 1 <= frames <= MAX_FRAMES:
            raise UserError(f"data.num_frames must be from 1 to {MAX_FRAMES}, got {frames}")
        if not 1 <= crop <= MAX_SIDE or not 1 <= self.eval_transform.short_side <= MAX_SIDE:
            raise UserError(f"data.crop_size and data.short_side must be from 1 to {MAX_SIDE}, "
                            f"got {crop} and {self.eval_transform.short_side}")
        clip = frames * crop * crop * 3
        views = self.test_views.num_clips * self.test_views.num_crops
        if clip > MAX_CLIP_BYTES or clip * views > MAX_VIEWS_BYTES:
            raise UserError(f"clips of {frames} frames of {crop}x{crop} ({views} views a video) "
                            f"take more than {MAX_CLIP_BYTES >> 30} GiB a clip or "
                            f"{MAX_VIEWS_BYTES >> 30} GiB a video; lower data.num_frames, "
                            f"data.crop_size or the test views")

    @property
    def num_frames(self) -> int:
        return self.sampler.num_frames

    def with_test_views(self, num_clips: int, num_crops: int) -> ClipPipeline:
        """The same pipeline with another multi-view protocol."""
        return replace(self, test_views=ViewsPerVideo(num_clips, num_crops))

    def dataset(self, records: Sequence[VideoRecord], subset: str,
                skipped: SkippedVideoLog | None = None,
                transform: ClipTransform | None = None,
                source: FrameSource | None = None,
                multi_hot_classes: int | None = None) -> VideoClipDataset:
        """The clips of ``records`` for ``subset``: ``train`` (random draws), ``val`` (one
        deterministic clip) or ``test`` (``test_views`` per video, items ``(views, label,
        video)``). ``transform`` and ``source`` replace the pipeline's where the loading plan
        moves work to the device (the worker then only resizes, or leaves JPEG bytes).
        ``multi_hot_classes``: labels are multi-hot vectors of that many classes (a multi-label
        dataset)."""
        if subset_kind(subset) not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS} (or val/<name>), got {subset!r}")
        training, test = subset == "train", subset == "test"
        default = self.train_transform if training else self.eval_transform
        return VideoClipDataset(
            list(records),
            self.sampler,
            transform or default,
            training=training,
            source=source or self.source,
            skipped=skipped,
            views=(self.test_views.num_clips, self.test_views.num_crops) if test else None,
            on_decode_error=self.on_decode_error,
            multi_hot_classes=multi_hot_classes,
        )
