"""``vidtl-predict ckpt_path=... input=PATH``: the top-k classes of new videos.

With ``mode=timeline``, what happens when in long videos and live streams instead
(:mod:`vidtl.cli.predict_timeline`).

``input`` is a video, a folder of videos or a list file. Each video is scored with the
checkpoint's test protocol (``num_test_clips`` x ``num_test_crops`` views, averaged). A video
that cannot be read is reported on stderr (and as a JSON line with an ``error`` field when
``output=json``); the others are still predicted.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.core.errors import UserError
from vidtl.core.quoting import printable
from vidtl.evaluation.view_scores import check_view_scoring
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.inference.file_views import VideoViews, view_batches
from vidtl.inference.inputs import expand_input
from vidtl.inference.video_model import view_probabilities
from vidtl.training.operating_points import OperatingPoints, detected_classes

log = logging.getLogger(__name__)

OUTPUTS = ("text", "json")
MODES = ("clips", "timeline")


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Print and return one result per video: ``{"video", "topk"}`` (and ``"detected"``: the
    classes above their thresholds, for a model with operating points) or
    ``{"video", "error"}``."""
    if cfg.output not in OUTPUTS:
        raise UserError(f"output must be one of {OUTPUTS}, got {cfg.output!r}")
    check_view_scoring(cfg.view_aggregation, cfg.view_chunk)
    if cfg.mode not in MODES:
        raise UserError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    if cfg.mode == "timeline":
        from vidtl.cli.predict_timeline import predict_timeline

        predict_timeline(cfg)
        return []
    if cfg.runtime != "torch":
        raise UserError(f"runtime={cfg.runtime} scores mode=timeline only; mode=clips runs the "
                        f"checkpoint (runtime=torch)")
    if not cfg.get("ckpt_path"):
        raise UserError("ckpt_path=PATH is needed: the checkpoint to predict with")
    videos = expand_input(cfg.input)
    model = load_trained_model(cfg.ckpt_path, trusted_targets=cfg.get("trusted_targets") or (),
                               custom_imports=cfg.get("custom_imports") or (),
                               max_checkpoint_gb=cfg.get("max_checkpoint_gb"),
                               view_aggregation=cfg.view_aggregation)
    device = select_device(cfg.device)
    module = model.module.to(device)
    pipeline = model.test_pipeline(cfg.num_test_clips, cfg.num_test_crops)
    views = pipeline.test_views
    log.info("%d videos, %d x %d views each, on %s", len(videos), views.num_clips,
             views.num_crops, device)
    dataset = VideoViews.from_pipeline(videos, pipeline)
    top_k = min(int(cfg.top_k), len(model.class_names))
    results: list[dict[str, Any]] = []
    progress = bool(cfg.progress) and len(videos) > 1
    with torch.inference_mode():
        for batch in view_batches(dataset, int(cfg.batch_size), int(cfg.num_workers), progress):
            rows: dict[int, dict[str, Any]] = {}
            for index, reason in batch.errors:
                print(f"error: {printable(videos[index])}: {printable(reason)}", file=sys.stderr,
                      flush=True)
                rows[index] = {"video": str(videos[index]), "error": reason}
            if batch.views is not None:
                scores = view_probabilities(module, batch.views, cfg.view_chunk,
                                            cfg.view_aggregation)
                for row, index in enumerate(batch.videos):
                    rows[index] = {"video": str(videos[index]),
                                   **scored(scores[row], model.class_names, top_k,
                                            module.operating_points)}
            for index in sorted(rows):
                emit(rows[index], cfg.output)
                results.append(rows[index])
    failed = sum("error" in r for r in results)
    log.info("predicted %d videos, %d unreadable", len(results) - failed, failed)
    if results and failed == len(results):
        raise UserError(f"no video could be predicted ({failed} unreadable; see above)")
    return results


def scored(scores: torch.Tensor, class_names: list[str], top_k: int,
           points: OperatingPoints | None) -> dict[str, Any]:
    """One video's ``topk`` classes with their probabilities, and for a model with operating
    points the ``detected`` ones (at or above their thresholds)."""
    probabilities, classes = scores.topk(top_k, dim=-1)
    found: dict[str, Any] = {"topk": [
        [class_names[c], round(float(p), 6)]
        for c, p in zip(classes.tolist(), probabilities.tolist(), strict=True)]}
    if points is not None:
        found["detected"] = [[class_names[c], p] for c, p in detected_classes(points, scores)]
    return found


def emit(result: dict[str, Any], output: str) -> None:
    """One result on stdout (errors only in JSON: stderr has them already)."""
    if output == "json":
        print(json.dumps(result), flush=True)
    elif "topk" in result:
        ranked = ", ".join(f"{printable(name)} {p:.3f}" for name, p in result["topk"])
        if "detected" in result:  # classes above their thresholds, then the ranking
            found = ", ".join(f"{printable(name)} {p:.3f}" for name, p in result["detected"])
            ranked = f"detected: {found or 'none'} | top: {ranked}"
        print(f"{printable(result['video'])}: {ranked}", flush=True)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
