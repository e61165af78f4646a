"""``VideoDataModule``: annotations -> records -> clip datasets -> uint8 batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from vidtl.data.dataset import SkippedVideoLog, VideoClipDataset
from vidtl.data.device_augment import DeviceClipAugment
from vidtl.data.encoded_clips import (
    EncodedClipBatch,
    collate_encoded,
    decode_clip_batch,
    keep_encoded,
)
from vidtl.data.exclusions import drop_excluded, read_exclusion_list
from vidtl.data.formats import load_index
from vidtl.data.prepare import read_manifest
from vidtl.data.records import VideoIndex
from vidtl.data.resumable_loading import (
    EpochBalancedSampler,
    EpochShuffleSampler,
    ResumableDataLoader,
)
from vidtl.data.sampling import build_sampler
from vidtl.data.sources import (
    SOURCES,
    EncodedFrameStoreSource,
    FrameSource,
    FrameStoreSource,
    VideoFileSource,
)
from vidtl.data.synthetic import SyntheticVideoSpec, ensure_synthetic_dataset
from vidtl.data.threaded_loader import ThreadedDataLoader
from vidtl.data.transforms import CoverResizeTransform, EvalClipTransform, TrainClipTransform

log = logging.getLogger(__name__)


class VideoDataModule(L.LightningDataModule):
    """Streams uint8 clips ``(B, T, C, crop, crop)`` and labels from a dataset on disk.

    ``format`` names a registered dataset format; the keys ``split``, ``annotation_dir``,
    ``annotations`` and ``*_list`` go to the formats that take them. With ``synthetic`` set,
    :meth:`prepare_data` first generates that dataset at ``root`` (once; it is cached).
    Videos that cannot be read are replaced, counted and appended to ``skipped_log``.

    ``source='frames'`` reads the frames from the store that ``vidtl-prepare mode=frames`` wrote
    at ``frames_root`` instead of decoding the videos; sampling is identical. ``exclude_list``
    names videos to leave out (``vidtl-check`` writes one).

    ``augment_on='device'`` moves the training crop and flip out of the workers: they deliver
    clips resized to cover ``device_frame_size`` (height, width; default the 340x256 aspect)
    and :attr:`device_augment` crops the batch on the device (the module applies it).

    Training batches come in a seeded per-epoch order that survives a mid-epoch resume
    (:mod:`vidtl.data.resumable_loading`); ``balanced_sampling`` draws them class-balanced.

    ``load_threads=N`` (with ``num_workers=0``) builds the batches in N threads of the main
    process (:class:`ThreadedDataLoader`) instead of worker processes. That avoids the workers'
    hand-over through shared memory, which costs more than decoding when the frames are JPEG
    (``source=frames``).

    ``decode_on='device'`` (with ``source='frames'`` and ``augment_on='device'``) leaves the JPEG
    frames undecoded in the workers; :meth:`on_before_batch_transfer` decodes them on the
    training device (nvJPEG on a GPU) and resizes each clip there.
    """

    def __init__(
        self,
        root: str | Path,
        format: str = "ucf101",
        split: int = 1,
        annotation_dir: str | Path | None = None,
        annotations: str | Path | None = None,
        train_list: str | Path | None = None,
        val_list: str | Path | None = None,
        test_list: str | Path | None = None,
        strict: bool = False,
        num_frames: int = 8,
        sampler: str = "segment",
        frame_interval: int = 1,
        crop_size: int = 224,
        short_side: int = 256,
        num_test_clips: int = 1,
        num_test_crops: int = 1,
        train_crop: str = "multi_scale",
        flip: bool = True,
        balanced_sampling: bool = False,
        augment_on: str = "worker",
        decode_on: str = "worker",
        device_frame_size: tuple[int, int] | None = None,
        batch_size: int = 8,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        backend: str = "decord",
        decode_threads: int = 1,
        load_threads: int = 0,
        source: str = "video",
        frames_root: str | Path | None = None,
        exclude_list: str | Path | None = None,
        skipped_log: str | Path | None = None,
        synthetic: SyntheticVideoSpec | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root).expanduser()
        self.format = format
        self.format_options = {
            "split": split,
            "annotation_dir": annotation_dir,
            "annotations": annotations,
            "train_list": train_list,
            "val_list": val_list,
            "test_list": test_list,
        }
        self.strict = strict
        self.sampler = build_sampler(sampler, num_frames, frame_interval)
        if augment_on not in ("worker", "device"):
            raise ValueError(f"data.augment_on must be 'worker' or 'device', got {augment_on!r}")
        self.train_transform = TrainClipTransform(crop_size, train_crop, flip=flip)
        self.device_augment: DeviceClipAugment | None = None
        self.worker_train_transform: TrainClipTransform | CoverResizeTransform
        self.worker_train_transform = self.train_transform
        if augment_on == "device":
            # Default: Kinetics' 340x256 aspect, so such frames (and stores) need no resize.
            height, width = device_frame_size or (short_side, round(short_side * 340 / 256))
            self.worker_train_transform = CoverResizeTransform(int(height), int(width))
            self.device_augment = DeviceClipAugment(self.train_transform)
        self.eval_transform = EvalClipTransform(crop_size, short_side)
        if num_test_clips < 1 or num_test_crops not in (1, 3):
            raise ValueError(f"data.num_test_clips must be >= 1 and data.num_test_crops 1 or 3, "
                             f"got {num_test_clips} and {num_test_crops}")
        self.test_views = (num_test_clips, num_test_crops)
        if decode_on not in ("worker", "device"):
            raise ValueError(f"data.decode_on must be 'worker' or 'device', got {decode_on!r}")
        if decode_on == "device" and (source != "frames" or augment_on != "device"):
            raise ValueError("data.decode_on=device decodes the JPEG frames of a frame store on "
                             "the device: it needs data.source=frames and data.augment_on=device")
        self.decode_on = decode_on
        self.batch_size = batch_size
        self.balanced_sampling = balanced_sampling
        self.num_workers = num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()  # pinning needs a GPU
        self.persistent_workers = persistent_workers and num_workers > 0
        if source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got {source!r}")
        if source == "frames" and not frames_root:
            raise ValueError("data.source=frames needs data.frames_root=DIR (a store written by "
                             "vidtl-prepare mode=frames)")
        self.backend = backend
        self.decode_threads = decode_threads
        if load_threads < 0:
            raise ValueError(f"data.load_threads must be >= 0, got {load_threads}")
        if load_threads and num_workers:
            raise ValueError(f"data.load_threads={load_threads} builds the batches in threads "
                             f"instead of worker processes: set data.num_workers=0 with it")
        self.load_threads = load_threads
        self.source = source
        self.frames_root = Path(frames_root).expanduser() if frames_root else None
        self.exclude_list = Path(exclude_list).expanduser() if exclude_list else None
        self.skipped = SkippedVideoLog(skipped_log)
        self.synthetic = synthetic
        self._index: VideoIndex | None = None
        self.datasets: dict[str, VideoClipDataset] = {}
        self._train_position: dict[str, Any] | None = None  # from a checkpoint, not yet applied

    @property
    def num_frames(self) -> int:
        return self.sampler.num_frames

    @property
    def train_clip_size(self) -> tuple[int, int]:
        """(height, width) of the training clips the workers deliver."""
        if isinstance(self.worker_train_transform, CoverResizeTransform):
            return self.worker_train_transform.height, self.worker_train_transform.width
        return self.train_transform.crop_size, self.train_transform.crop_size

    def prepare_data(self) -> None:
        if self.synthetic is not None:
            ensure_synthetic_dataset(self.root, self.synthetic)

    @property
    def index(self) -> VideoIndex:
        """The dataset's records and class names (read once)."""
        if self._index is None:
            if self.synthetic is not None:
                ensure_synthetic_dataset(self.root, self.synthetic)
            self._index = load_index(self.format, self.root, self.strict, **self.format_options)
            for path in self._index.missing:
                self.skipped.add(path, "missing file (listed in the annotations)")
            if self.exclude_list is not None:
                excluded = read_exclusion_list(self.exclude_list, self.root)
                before = sum(len(v) for v in self._index.subsets.values())
                for subset, records in self._index.subsets.items():
                    self._index.subsets[subset] = drop_excluded(records, excluded)
                after = sum(len(v) for v in self._index.subsets.values())
                log.info("left out %d videos named in %s", before - after, self.exclude_list)
            sizes = {k: len(v) for k, v in self._index.subsets.items()}
            log.info("%s at %s: %d classes, %s videos", self.format, self.root,
                     self._index.num_classes, sizes)
        return self._index

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    @property
    def val_is_test(self) -> bool:
        """Whether validation and test are the same videos (UCF101, HMDB51 have no val split)."""
        val, test = self.index.subsets.get("val"), self.index.subsets.get("test")
        return bool(val) and bool(test) and [r.path for r in val] == [r.path for r in test]

    def has_subset(self, subset: str) -> bool:
        return bool(self.index.subsets.get(subset))

    def frame_source(self, encoded: bool = False) -> FrameSource:
        """The decoder of the video files, or the frame store's reader (``encoded``: one that
        leaves the JPEG bytes undecoded)."""
        if self.source == "video":
            return VideoFileSource(self.backend, self.decode_threads)
        assert self.frames_root is not None
        read_manifest(self.frames_root, expected_mode="frames")  # fails early on a wrong folder
        if encoded:
            return EncodedFrameStoreSource(self.frames_root, self.root)
        return FrameStoreSource(self.frames_root, self.root)

    def dataset(self, subset: str) -> VideoClipDataset:
        """The clip dataset of ``train``, ``val`` or ``test``; ``test`` items are multi-view:
        ``(views, label, video)`` with ``data.num_test_clips x data.num_test_crops`` views."""
        if subset not in self.datasets:
            records = self.index.subsets.get(subset)
            if not records:
                raise ValueError(f"dataset {self.root} ({self.format}) has no {subset} videos")
            training, test = subset == "train", subset == "test"
            transform = self.worker_train_transform if training else self.eval_transform
            # Multi-view test items are decoded in the loader whatever decode_on says.
            encoded = self.decode_on == "device" and not test
            self.datasets[subset] = VideoClipDataset(
                records,
                self.sampler,
                keep_encoded if encoded else transform,
                training=training,
                source=self.frame_source(encoded),
                skipped=self.skipped,
                views=self.test_views if test else None,
            )
        return self.datasets[subset]

    def setup(self, stage: str | None = None) -> None:
        self.index  # noqa: B018 (read annotations and fail early on bad ones)

    def dataloader(self, subset: str) -> DataLoader:
        """The loader of ``train`` (shuffled, full batches), ``val`` or ``test``."""
        dataset = self.dataset(subset)
        training = subset == "train"
        threads = {"threads": self.load_threads} if self.load_threads else {}
        if training:  # seeded per epoch, and resumable mid-epoch (see resumable_loading)
            loader_class = ThreadedDataLoader if threads else ResumableDataLoader
            sampler = (EpochBalancedSampler([r.label for r in dataset.records],
                                            torch.initial_seed()) if self.balanced_sampling
                       else EpochShuffleSampler(len(dataset), torch.initial_seed()))
            order = {"sampler": sampler}
        else:
            loader_class = ThreadedDataLoader if threads else DataLoader
            order = {"shuffle": False}
        return loader_class(
            dataset,
            batch_size=self.batch_size,
            **order,
            drop_last=training and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            collate_fn=collate_encoded if self.decode_on == "device" and subset != "test" else None,
            **threads,
        )

    def decode_batch(self, batch: Any, device: torch.device | str, training: bool) -> Any:
        """With ``decode_on='device'``: the batch's clips decoded on ``device`` and brought to the
        size of the workers' transform (uint8 ``(B, T, C, H, W)``); any other batch unchanged."""
        if not (isinstance(batch, (tuple, list)) and isinstance(batch[0], EncodedClipBatch)):
            return batch
        transform = self.worker_train_transform if training else self.eval_transform
        return decode_clip_batch(batch[0], device, transform), batch[1]

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.decode_batch(batch, self.trainer.strategy.root_device, self.trainer.training)

    def train_dataloader(self) -> DataLoader:
        loader = self.dataloader("train")
        if self._train_position:
            loader.load_state_dict(self._train_position)
            self._train_position = None
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where the training loader is in its epoch."""
        loader = self.trainer.train_dataloader if self.trainer is not None else None
        if isinstance(loader, ResumableDataLoader):
            return {"train_loader": loader.state_dict()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the training loader's position (applied to the loader made next: Lightning
        restores the data module before it asks for the loaders)."""
        self._train_position = state_dict.get("train_loader")

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
