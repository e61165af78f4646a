"""``vidtl-extract ckpt_path=... output=FILE.npz``: per-video embeddings for probes and retrieval.

The embedding of a video is the temporal module's output (before dropout and the head),
averaged over the checkpoint's test views. Videos come from ``input=`` (a file, folder or
list) or from ``subset=`` of the checkpoint's dataset. The ``.npz`` holds ``videos`` (paths),
``embeddings`` (float32, one row per video), ``labels`` (-1 where unknown; multi-hot rows
``(N, K)`` for a multi-label dataset's subset), ``class_names`` and
``failed`` (``path<TAB>reason`` of the videos that could not be read, which are left out).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from vidtl.assembly.checkpoint_data import checkpoint_data
from vidtl.assembly.data import dataset_spec
from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.cli.predict import select_device
from vidtl.core.atomic import atomic_path
from vidtl.core.errors import UserError
from vidtl.core.own_files import check_replaceable
from vidtl.core.quoting import printable
from vidtl.data.annotations.index import read_index
from vidtl.evaluation.view_scores import check_view_scoring, score_views
from vidtl.inference.checkpoint_model import TrainedModel, load_trained_model
from vidtl.inference.file_views import VideoViews, view_batches
from vidtl.inference.inputs import expand_input

log = logging.getLogger(__name__)


def is_embeddings_file(path: Path) -> bool:
    """An ``.npz`` that vidtl-extract wrote (its arrays' names, read without unpickling)."""
    with np.load(path, allow_pickle=False) as arrays:
        return {"videos", "embeddings", "labels"} <= set(arrays.files)


def videos_to_embed(cfg: DictConfig, model: TrainedModel
                    ) -> tuple[list[Path], list[int] | list[list[int]]]:
    """The videos of ``input`` (labels unknown: -1) or of ``subset`` (with their labels: class
    indices, or multi-hot rows for a multi-label dataset)."""
    if (cfg.input is None) == (cfg.subset is None):
        raise UserError("give either input=PATH (videos) or subset=train|val|test (the "
                        "checkpoint's dataset)")
    if cfg.input is not None:
        videos = expand_input(cfg.input)
        return videos, [-1] * len(videos)
    overrides = {"root": cfg.data_root} if cfg.data_root else {}
    data = checkpoint_data(OmegaConf.to_container(model.config.data), overrides,
                           str(cfg.ckpt_path))
    spec = dataset_spec(data.config, data.quote_content)
    records = read_index(spec).subsets.get(cfg.subset)
    if not records:
        raise UserError(f"the dataset at {spec.root} has no {cfg.subset} videos")
    if any(r.multilabel for r in records):  # multi-hot rows (N, K)
        size = len(model.class_names)
        return [r.path for r in records], [[int(c in r.labels()) for c in range(size)]
                                           for r in records]
    return [r.path for r in records], [r.label for r in records]


def extract(cfg: DictConfig) -> dict[str, np.ndarray]:
    """Embed the videos, write ``cfg.output`` and return its arrays."""
    output = Path(cfg.output).expanduser()
    if output.suffix != ".npz":
        raise UserError(f"output must be a .npz file, got {output}")
    check_replaceable(output, is_embeddings_file, "a vidtl-extract embeddings file")
    check_view_scoring(cfg.view_aggregation, cfg.view_chunk)
    model = load_trained_model(cfg.ckpt_path, trusted_targets=cfg.get("trusted_targets") or (),
                               custom_imports=cfg.get("custom_imports") or (),
                               max_checkpoint_gb=cfg.get("max_checkpoint_gb"))
    videos, labels = videos_to_embed(cfg, model)
    device = select_device(cfg.device)
    module = model.module.to(device)
    pipeline = model.test_pipeline(cfg.num_test_clips, cfg.num_test_crops)
    views = pipeline.test_views
    log.info("%d videos, %d x %d views each, on %s", len(videos), views.num_clips,
             views.num_crops, device)
    dataset = VideoViews.from_pipeline(videos, pipeline)

    def embed(clips: torch.Tensor) -> torch.Tensor:
        return module.classifier.clip_features(module.device_stage.normalize(clips))

    kept: list[int] = []
    embeddings: list[torch.Tensor] = []
    failed: list[str] = []
    with torch.inference_mode():
        for batch in view_batches(dataset, int(cfg.batch_size), int(cfg.num_workers),
                                  bool(cfg.progress)):
            for index, reason in batch.errors:
                print(f"error: {printable(videos[index])}: {printable(reason)}", file=sys.stderr,
                      flush=True)
                failed.append(f"{videos[index]}\t{reason}")
            if batch.views is not None:
                features = score_views(batch.views.to(device), embed, cfg.view_chunk)
                embeddings.append(features.float().mean(1).cpu())
                kept.extend(batch.videos)
    if not kept:
        raise UserError(f"no video could be read ({len(failed)} failed; see above)")
    arrays = {
        "videos": np.array([str(videos[i]) for i in kept]),
        "embeddings": torch.cat(embeddings).numpy().astype(np.float32),
        "labels": np.array([labels[i] for i in kept], dtype=np.int64),
        "class_names": np.array(model.class_names),
        "failed": np.array(failed, dtype=str),
    }
    with atomic_path(output, keep_suffix=True) as partial:
        np.savez(partial, **arrays)
    log.info("%d embeddings of size %d written to %s (%d videos failed)", len(kept),
             arrays["embeddings"].shape[1], output, len(failed))
    return arrays


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="extract")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    extract(cfg)


if __name__ == "__main__":
    main()
