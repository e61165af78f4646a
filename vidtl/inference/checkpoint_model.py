"""A trained model rebuilt from a vidtl checkpoint, for evaluation, prediction and export.

A checkpoint is a file someone else may have written. It is read with ``weights_only=True``
(tensors and plain containers, no pickled code) once its entries are known not to expand past
a limit (:mod:`vidtl.core.tensor_files`); its saved config must be plain data without an
interpolation, that fetches nothing and names only trusted ``_target_`` objects
(:mod:`vidtl.core.stored_config`), and objects are built from exactly that checked container;
the model is built within limits that follow from its weights, with no network
(:mod:`vidtl.inference.rebuild_limits`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.config_upgrade import upgrade_config
from vidtl.assembly.data import clip_length, clip_pipeline
from vidtl.assembly.model import ModuleFactory, build_module, operating_point_options
from vidtl.core.custom_imports import import_custom
from vidtl.core.errors import UserError, wrapped_user_error
from vidtl.core.quoting import printable
from vidtl.core.stored_config import checked_config, plain_config
from vidtl.core.tensor_files import UnreadableTensorFileError
from vidtl.data.clips.pipeline import ClipPipeline
from vidtl.inference.rebuild_limits import build_within_limits
from vidtl.training.checkpoint_file import CheckpointMismatchError, read_checkpoint
from vidtl.training.module import VideoClassificationModule

UnreadableCheckpointError = UnreadableTensorFileError
MAX_CLASSES = 100_000


def load_checkpoint(path: str | Path, trusted_targets: Sequence[str] = (),
                    custom_imports: Sequence[str] = (), max_gb: float | None = None
                    ) -> dict[str, Any]:
    """A vidtl checkpoint, loaded safely, whose record (``checkpoint["vidtl"]``) holds its
    config as checked plain data (see the module docstring): trusted ``_target_`` objects are
    vidtl's, or under the user's own prefixes (``trusted_targets``, and the modules of
    ``custom_imports``, which are imported first). ``max_gb`` caps what the file may expand to
    (default: four times its size)."""
    trusted = [*trusted_targets, *import_custom(custom_imports)]
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = read_checkpoint(path, max_gb)
    record, state = checkpoint.get("vidtl"), checkpoint.get("state_dict")
    if not isinstance(record, dict) or not isinstance(state, dict):
        raise CheckpointMismatchError(
            f"{path} is not a vidtl checkpoint (no 'vidtl' record); it must come from vidtl-train"
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointMismatchError(f"{path}: its state_dict must map names to tensors")
    origin = str(path)
    names = plain_config(record.get("class_names"), origin)
    if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES or not all(
            isinstance(n, (str, int)) and str(n).isprintable() for n in names):
        raise CheckpointMismatchError(f"{path}: its class_names must be a list of printable "
                                      f"names (no control characters)")
    config = upgrade_config(plain_config(record.get("config"), origin))
    if not isinstance(config, dict) or not all(
            isinstance(config.get(part), dict) for part in ("model", "data")):
        raise CheckpointMismatchError(f"{path}: its saved config has no model and data "
                                      f"configs; it must come from vidtl-train")
    checkpoint["vidtl"] = {**record, "config": checked_config(config, origin, trusted),
                           "class_names": [str(n) for n in names], "origin": origin}
    return checkpoint


@dataclass
class TrainedModel:
    """The module (in eval mode), the run's resolved config and its class names."""

    module: VideoClassificationModule
    config: DictConfig
    class_names: list[str]

    @property
    def num_frames(self) -> int:
        return clip_length(self.config.data)

    def test_pipeline(self, num_clips: int | None = None,
                      num_crops: int | None = None) -> ClipPipeline:
        """The run's clip pipeline for video files outside its dataset (decoded, whatever
        ``data.source`` the run read), with the run's test protocol unless ``num_clips`` or
        ``num_crops`` replace it."""
        pipeline = clip_pipeline(self.config.data, source="video")
        views = pipeline.test_views
        return pipeline.with_test_views(num_clips or views.num_clips, num_crops or views.num_crops)


def load_trained_model(path: str | Path, num_frames: int | None = None,
                       trusted_targets: Sequence[str] = (), custom_imports: Sequence[str] = (),
                       max_checkpoint_gb: float | None = None,
                       **module_options: Any) -> TrainedModel:
    """Rebuild the LightningModule of checkpoint ``path`` (its own class: vidtl's or the
    subclass it was trained with) for ``num_frames`` frames per clip (by default those it was
    trained with), with its weights. ``custom_imports`` are the user's modules to import and
    trust (as in training), ``trusted_targets`` further prefixes of the user's code the saved
    config may name; ``module_options`` go to the module (view aggregation and chunk)."""
    return trained_model_from(load_checkpoint(path, trusted_targets, custom_imports,
                                              max_checkpoint_gb), num_frames, **module_options)


def trained_model_from(checkpoint: dict[str, Any], num_frames: int | None = None,
                       **module_options: Any) -> TrainedModel:
    """:func:`load_trained_model` of a checkpoint loaded (and checked) by
    :func:`load_checkpoint`: built within the limits of its weights
    (:func:`~vidtl.inference.rebuild_limits.build_within_limits`), with ``pretrained=False``
    (the weights come from the state dict)."""
    record = checkpoint["vidtl"]
    config = OmegaConf.create(record["config"])  # checked: plain data, no interpolation
    class_names = list(record["class_names"])
    frames = num_frames or clip_length(config.data)
    origin = record.get("origin", "checkpoint")
    def build() -> VideoClassificationModule:
        return build_module(config.model, class_names, frames, pretrained=False,
                            module_factory=saved_module_class(config),
                            class_weights=stored_class_weights(checkpoint, len(class_names)),
                            **(operating_point_options(config) | module_options))

    with built_from_checkpoint(origin):
        module = build_within_limits(build, origin, checkpoint["state_dict"])
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        written_by = printable(record.get("module_class", "?"))[:200]  # (from the file)
        raise CheckpointMismatchError(
            f"{origin}: the checkpoint's weights do not fit {type(module).__qualname__} (the "
            f"checkpoint was written by {written_by}): {weights_problem(error)}") from None
    return TrainedModel(module.eval(), config, class_names)


def weights_problem(error: RuntimeError) -> str:
    """torch's ``load_state_dict`` error in one line: its reasons (the lines after its first,
    which only names the module), at most 300 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = " ".join(lines[1:]) if len(lines) > 1 else (lines[0] if lines else "")
    return printable(reasons)[:300]


def stored_class_weights(checkpoint: dict[str, Any], num_classes: int) -> list[float] | None:
    """The loss's class weights the run trained with (``module.class_weights=balanced``), so
    evaluation reports the same loss: the record's, or (checkpoints of vidtl 0.4) the saved
    hyper-parameters'; ``None`` when it had none. Anything but ``num_classes`` finite weights
    of at least 0 is a :class:`CheckpointMismatchError`."""
    record = checkpoint["vidtl"]
    weights = record.get("class_weights")
    if "class_weights" not in record:
        hyper = checkpoint.get("hyper_parameters")
        weights = hyper.get("class_weights") if isinstance(hyper, dict) else None
    if weights is None:
        return None
    numbers = (weights if isinstance(weights, list) and len(weights) == num_classes
               and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
               else [])
    as_float32 = (torch.tensor([float(w) for w in numbers], dtype=torch.float32)
                  if numbers and all(0 <= w <= MAX_CLASS_WEIGHT for w in numbers) else None)
    total = as_float32.sum() if as_float32 is not None else None
    if total is None or not torch.isfinite(total) or total <= 0:
        raise CheckpointMismatchError(
            f"{record.get('origin', 'checkpoint')}: its class_weights must be {num_classes} "
            f"finite numbers of at least 0 (one per class, not all 0)")
    return [float(w) for w in numbers]


MAX_CLASS_WEIGHT = 1e30  # a float32 tensor, summed in the loss: far below float32 overflow


@contextmanager
def built_from_checkpoint(origin: str) -> Iterator[None]:
    """Inside the block, objects are built from a checkpoint's config, which is input: a
    :class:`UserError` (a refusal) that Hydra's ``instantiate`` wrapped is raised as itself,
    and any other failure (a class rejecting a value, an allocation that fails) is one
    :class:`CheckpointMismatchError` naming the checkpoint."""
    try:
        yield
    except UserError as error:  # a refusal of a value in the file: say which file
        if error.args and isinstance(error.args[0], str) and origin not in error.args[0]:
            error.args = (f"{origin}: {error.args[0]}", *error.args[1:])
        raise
    except Exception as error:
        refusal = wrapped_user_error(error)
        if refusal is not None:
            raise refusal.with_traceback(None) from None
        cause = error.__cause__ or error
        first = str(cause).strip().splitlines()
        raise CheckpointMismatchError(
            f"{origin}: its saved config does not build a model ({type(cause).__name__}: "
            f"{first[0][:200] if first else ''})") from error


def saved_module_class(config: DictConfig) -> ModuleFactory:
    """The LightningModule of the saved ``module`` config (its class, vidtl's or a subclass,
    with its saved options: loss, mixing and the subclass's own), checked as trusted by
    :func:`load_checkpoint`; vidtl's class (with the saved options) when it names none."""
    module_cfg = OmegaConf.to_container(config.get("module") or OmegaConf.create({}))
    module_cfg.setdefault("_target_", VIDTL_MODULE)
    return instantiate(module_cfg, _partial_=True)


VIDTL_MODULE = f"{VideoClassificationModule.__module__}.{VideoClassificationModule.__qualname__}"
