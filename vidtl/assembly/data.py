"""The data config (flat ``data.*`` keys) turned into a dataset spec, a clip pipeline, a loading
plan and the data module.

Each key is declared once, with its default and its roles, as a field of one of the data
concerns' dataclasses (:data:`DATA_SETTINGS`: :class:`DatasetSettings`, :class:`ClipSettings`,
:class:`LoadingPlan`; the built-in formats' options in :class:`FormatOptions`); every key list
below is read from them, and ``conf/data/base.yaml`` (which documents each key) and
``conf/data/from_checkpoint.yaml`` hold the same keys (tests/test_data_settings.py).
:func:`data_options` gives a data config for Python use
(``build_datamodule(data_options(root=..., num_frames=16))``). The keys with the ``choice`` role
choose an extension point by registered name or by a config with ``_target_``: ``data.format``,
``data.sampler``, ``data.backend`` and ``data.source``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.config_files import config_dir
from vidtl.core.errors import UserError
from vidtl.core.settings import LOADER_ONLY, field_names, keys_with, settings_from
from vidtl.data.annotations.carved_validation import CarvedValidation
from vidtl.data.annotations.dataset_settings import DatasetSettings
from vidtl.data.annotations.index import DatasetSpec
from vidtl.data.clips.clip_settings import ClipSettings
from vidtl.data.clips.pipeline import ClipPipeline, ViewsPerVideo
from vidtl.data.clips.sampling import build_sampler
from vidtl.data.clips.transforms import EvalClipTransform, TrainClipTransform
from vidtl.data.frames.sources import SourceOptions, build_source
from vidtl.data.loading.datamodule import VideoDataModule
from vidtl.data.loading.loading_plan import LoadingPlan
from vidtl.data.loading.stream_datamodule import ShardStreamDataModule
from vidtl.data.shards.storage import open_storage
from vidtl.data.shards.stream_dataset import StreamSource
from vidtl.data.tools.synthetic import ensure_synthetic_dataset

# The keys of every data config; all others go to the dataset format as its options.
DATA_SETTINGS = (DatasetSettings, ClipSettings, LoadingPlan)
SPEC_KEYS = field_names(DatasetSettings)
CLIP_KEYS = field_names(ClipSettings)
PLAN_KEYS = field_names(LoadingPlan)
# Keys that change how clips are loaded, not what they hold (left out of the feature cache key).
LOADER_ONLY_KEYS = keys_with(LOADER_ONLY, DATA_SETTINGS)


def data_options(**overrides: Any) -> DictConfig:
    """A data config: ``conf/data/base.yaml`` with ``overrides`` applied."""
    base = OmegaConf.load(Path(config_dir()) / "data" / "base.yaml")
    base.pop("defaults", None)
    return OmegaConf.merge(base, OmegaConf.create(_plain(overrides)))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


_CHOICE_KINDS = {"synthetic": "null or a SyntheticVideoSpec config with _target_"}
CALLABLE_CHOICES = ("format", "backend")  # called for each dataset / video


def _choice(value: Any, key: str) -> Any:
    """A registered name stays a name; a config with ``_target_`` becomes its object; anything
    else (a number, a list: a typo, or a crafted checkpoint) is a :class:`UserError` naming
    ``data.<key>``."""
    if isinstance(value, DictConfig) and "_target_" in value:
        try:
            built = instantiate(value)
        except UserError:
            raise
        except Exception as error:  # a class that does not take these options
            if isinstance(error.__cause__, UserError):
                raise error.__cause__ from None
            reason = " ".join(str(error.__cause__ or error).split())[:300]
            raise UserError(f"data.{key}: {value.get('_target_')!r} cannot be built from its "
                            f"options ({reason})") from None
        if key in CALLABLE_CHOICES and not callable(built):
            raise UserError(f"data.{key}: {value.get('_target_')!r} built a "
                            f"{type(built).__name__}, not a function (a format or a reader "
                            f"factory: give _partial_: true)")
        return built
    if key == "synthetic":
        if value is None:
            return value
    elif isinstance(value, str):
        return value
    wanted = _CHOICE_KINDS.get(key, "a registered name or a config with _target_")
    raise UserError(f"data.{key} must be {wanted}, got {type(value).__name__}")


def _path(value: Any) -> Path | None:
    return Path(str(value)).expanduser() if value not in (None, "") else None


def dataset_spec(data: DictConfig, quote_content: bool = True) -> DatasetSpec:
    """Where the dataset is and which format reads it; ``quote_content`` false for a data
    config that a checkpoint named (messages then quote none of its files)."""
    options = {k: v for k, v in OmegaConf.to_container(data, resolve=True).items()
               if k not in (*SPEC_KEYS, *CLIP_KEYS, *PLAN_KEYS)}
    dataset = settings_from(DatasetSettings, data, root=data.root)
    synthetic = _choice(dataset.synthetic, "synthetic")
    generate = (functools.partial(ensure_synthetic_dataset, spec=synthetic)
                if synthetic is not None else None)
    return DatasetSpec(root=_path(dataset.root), format=_choice(dataset.format, "format"),
                       options=options, strict=dataset.strict,
                       exclude_list=_path(dataset.exclude_list), generate=generate,
                       allow_outside_root=dataset.allow_outside_root,
                       quote_content=quote_content,
                       extra_val_lists=_extra_val_lists(dataset.extra_val_lists),
                       val_from_train=carved_validation(dataset))


def carved_validation(dataset: DatasetSettings) -> CarvedValidation | None:
    """``data.val_from_train`` (and ``data.val_split_seed``), checked; ``None`` when off."""
    amount = dataset.val_from_train
    if amount is None or amount == "":  # '' clears a checkpoint's value (vidtl-eval)
        return None
    if isinstance(amount, float) and amount.is_integer() and amount >= 1:
        amount = int(amount)  # 20.0 from a sweep's float range: a count
    return CarvedValidation(amount, dataset.val_split_seed)


def _extra_val_lists(value: Any) -> tuple[Path, ...]:
    """``data.extra_val_lists``: a list of CSV list paths (further validation sets)."""
    if value is None:
        return ()
    items = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    if isinstance(items, str) or not isinstance(items, (list, tuple)) or not all(
            isinstance(item, str) and item for item in items):
        raise UserError(f"data.extra_val_lists must be a list of CSV list files "
                        f"([hard.csv, night.csv]), got {items!r}")
    return tuple(Path(item).expanduser() for item in items)


def clip_pipeline(data: DictConfig, source: str | None = None) -> ClipPipeline:
    """Sampler, frame source and transforms of ``data``: the same for training, evaluation,
    prediction, feature extraction and the data benchmark. ``source`` replaces
    ``data.source`` (``video``: decode files that are not in the dataset's frame store)."""
    clip = settings_from(ClipSettings, data)
    sampler = build_sampler(_choice(clip.sampler, "sampler"), clip.num_frames,
                            clip.frame_interval)
    chosen = _choice(source or clip.source, "source")
    options = SourceOptions(data_root=_path(data.get("root")),
                            frames_root=_path(clip.frames_root),
                            backend=_choice(clip.backend, "backend"),
                            decode_threads=clip.decode_threads)
    frames = (StreamSource(str(clip.shards)) if chosen == "stream"
              else build_source(chosen, options))
    return ClipPipeline(
        sampler=sampler,
        source=frames,
        train_transform=TrainClipTransform(clip.crop_size, clip.train_crop, flip=clip.flip),
        eval_transform=EvalClipTransform(clip.crop_size, clip.short_side),
        test_views=ViewsPerVideo(clip.num_test_clips, clip.num_test_crops),
        on_decode_error=clip.on_decode_error,
    )


def clip_length(data: DictConfig) -> int:
    """``data.num_frames``, checked: the frames of a clip, as the sampler draws them and the
    model is built for (training, evaluation and a checkpoint's rebuild read it here)."""
    return settings_from(ClipSettings, data).num_frames


def loading_plan(data: DictConfig) -> LoadingPlan:
    """How ``data``'s batches are loaded (validated once)."""
    size = data.get("device_frame_size")
    if size is not None and not (OmegaConf.is_list(size) or isinstance(size, list | tuple)):
        raise UserError(f"data.device_frame_size must be [height, width], got {size!r}")
    return settings_from(LoadingPlan, data, device_frame_size=tuple(
        _whole(side, "device_frame_size") for side in size) if size is not None else None)


def _whole(value: Any, key: str) -> Any:
    """An integer-valued number as an int (``20.0`` from a sweep's float range); anything else
    as it is, for the setting's own check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_datamodule(data: DictConfig, output_dir: str | Path | None = None,
                     quote_content: bool = True) -> VideoDataModule:
    """The data module of ``data``; skipped videos are listed in ``output_dir`` when given
    (``quote_content``: see :func:`dataset_spec`)."""
    skipped = Path(output_dir) / "skipped_videos.txt" if output_dir is not None else None
    plan = loading_plan(data)  # first: an impossible combination is the first error
    if settings_from(ClipSettings, data).source == "stream":
        if data.get("val_from_train") not in (None, ""):
            raise UserError("data.val_from_train with data.source=stream: a shard store holds "
                            "the subsets it was written with; carve a validation set with "
                            "data.source=video or frames")
        if data.get("extra_val_lists"):
            raise UserError("data.extra_val_lists with data.source=stream: a shard store holds "
                            "the subsets it was written with; validate on further sets with "
                            "data.source=video or frames")
        if not data.get("shards"):
            raise UserError("data.source=stream needs data.shards=DIR or s3://bucket/prefix (a "
                            "store written by vidtl-prepare mode=shards)")
        return ShardStreamDataModule(open_storage(str(data.shards)), clip_pipeline(data), plan,
                                     skipped)
    return VideoDataModule(dataset_spec(data, quote_content), clip_pipeline(data), plan, skipped)
