"""How batches are loaded: worker processes or threads, and where decoding and augmentation run.

One small typed object, validated once: every impossible combination is refused here with one
clear error, so nothing downstream has to guard the cross product.

===================  =========================================================================
``num_workers``      worker processes that build the clips (0: the main process)
``load_threads``     threads of the main process that each build whole batches (needs
                     ``num_workers=0``): no shared-memory hand-over, best for a frame store
``augment_on``       ``worker``: the random crop and flip run in the loader; ``device``: the loader
                     only resizes clips to ``device_frame_size`` and the device stage crops
``decode_on``        ``worker``: frames decoded in the loader; ``device``: a frame store's JPEG
                     bytes travel undecoded and the device stage decodes them (needs
                     ``augment_on=device`` and ``data.source=frames``)
===================  =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from vidtl.core.errors import UserError
from vidtl.core.settings import LOADER_ONLY, MACHINE, setting
from vidtl.data.annotations.records import subset_kind
from vidtl.data.clips.pipeline import MAX_SIDE, ClipPipeline
from vidtl.data.clips.transforms import ClipTransform, CoverResizeTransform
from vidtl.data.frames.sources import EncodedFrameStoreSource, FrameSource, FrameStoreSource
from vidtl.data.loading.device_stage import DeviceStage
from vidtl.data.loading.encoded_batches import keep_encoded

PLACES = ("worker", "device")


@dataclass(frozen=True)
class LoadingPlan:
    """Batch size, parallelism and the placement of decoding and augmentation (see the
    module docstring); ``balanced_sampling`` draws training clips class-balanced."""

    batch_size: int = setting(8, MACHINE, LOADER_ONLY)
    num_workers: int = setting(4, MACHINE, LOADER_ONLY)
    load_threads: int = setting(0, MACHINE, LOADER_ONLY)
    pin_memory: bool = setting(True, MACHINE, LOADER_ONLY)
    persistent_workers: bool = setting(True, MACHINE, LOADER_ONLY)
    balanced_sampling: bool = setting(False, LOADER_ONLY)
    augment_on: str = setting("worker")
    decode_on: str = setting("worker")
    device_frame_size: tuple[int, int] | None = setting(None)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0 or self.load_threads < 0:
            raise UserError(f"data.num_workers and data.load_threads must be >= 0, got "
                            f"{self.num_workers} and {self.load_threads}")
        for key, value in (("augment_on", self.augment_on), ("decode_on", self.decode_on)):
            if value not in PLACES:
                raise UserError(f"data.{key} must be one of {PLACES}, got {value!r}")
        if self.load_threads and self.num_workers:
            raise UserError(f"data.load_threads={self.load_threads} builds the batches in "
                            f"threads instead of worker processes: set data.num_workers=0 with it")
        if self.decode_on == "device" and self.augment_on != "device":
            raise UserError("data.decode_on=device decodes the JPEG frames on the device, where "
                            "the crop must run too: set data.augment_on=device with it")
        size = self.device_frame_size
        if size is not None and (len(size) != 2 or not all(
                isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= MAX_SIDE
                for side in size)):
            raise UserError(f"data.device_frame_size must be [height, width], each from 1 to "
                            f"{MAX_SIDE}, got {size}")

    @property
    def decodes_on_device(self) -> bool:
        return self.decode_on == "device"

    def frame_size(self, short_side: int) -> tuple[int, int]:
        """(height, width) the loader delivers with ``augment_on=device``: ``device_frame_size``,
        by default Kinetics' 340x256 aspect at ``short_side`` (such frames need no resize)."""
        height, width = self.device_frame_size or (short_side, round(short_side * 340 / 256))
        return int(height), int(width)

    def device_stage(self, pipeline: ClipPipeline, mean: tuple[float, ...],
                     std: tuple[float, ...]) -> DeviceStage:
        """The device stage this plan needs: normalisation always, the crop and flip with
        ``augment_on=device``, decoding with ``decode_on=device``."""
        augment = pipeline.train_transform if self.augment_on == "device" else None
        if not self.decodes_on_device:
            return DeviceStage(mean, std, augment)
        return DeviceStage(mean, std, augment, decode_train=self._cover_resize(pipeline),
                           decode_eval=pipeline.eval_transform)

    def _cover_resize(self, pipeline: ClipPipeline) -> CoverResizeTransform:
        """The one size every training clip is brought to when the device crops."""
        return CoverResizeTransform(*self.frame_size(pipeline.eval_transform.short_side))

    def loader_train_transform(self, pipeline: ClipPipeline) -> ClipTransform:
        """What the loader runs on a training clip: the whole augmentation, only the resize to
        one size (the device crops), or nothing (the device decodes)."""
        if self.decodes_on_device:
            return keep_encoded
        if self.augment_on == "device":
            return self._cover_resize(pipeline)
        return pipeline.train_transform

    def check(self, pipeline: ClipPipeline) -> None:
        """Refuse a pipeline this plan cannot load (JPEG bytes need a frame store)."""
        if self.decodes_on_device and not isinstance(pipeline.source, FrameStoreSource):
            raise UserError("data.decode_on=device decodes a frame store's JPEG frames: it needs "
                            "data.source=frames")

    def loader_source(self, pipeline: ClipPipeline, subset: str) -> FrameSource:
        """The frame source of the loader: the store's JPEG bytes with ``decode_on=device``,
        except for multi-view test items, which are always decoded in the loader."""
        source = pipeline.source
        if not self.decodes_on_device or subset == "test":
            return source
        assert isinstance(source, FrameStoreSource)  # check() refused other sources
        return EncodedFrameStoreSource(source.store_root, source.data_root)

    def loader_transform(self, pipeline: ClipPipeline, subset: str) -> ClipTransform | None:
        """The loader's transform for ``subset`` (``None``: the pipeline's own)."""
        if subset == "train":
            return self.loader_train_transform(pipeline)
        if subset_kind(subset) == "val" and self.decodes_on_device:
            return keep_encoded
        return None
