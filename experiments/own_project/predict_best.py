"""Load the best job of a sweep and predict, in a script of your own.

    python predict_best.py <sweep folder> <video>

Reads the sweep's results.csv (one row per job), takes the job with the best val/top1, loads
its checkpoint with ``vidtl.load`` (in the class it was trained with) and predicts the video,
once from its path (the checkpoint's own test protocol) and once from a uint8 tensor of its
frames (T, H, W, C), as a script that decodes video itself would. Prints one JSON line.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import av
import numpy as np

import vidtl

CUSTOM_IMPORTS = ["mylab.temporal", "mylab.module"]  # as in conf/experiment/mylab_csv.yaml


def best_job(sweep_dir: Path, metric: str = "val/top1") -> dict[str, str]:
    """The results.csv row of the finished job with the highest ``metric`` (its checkpoint:
    the best epoch, or the final weights where those were evaluated)."""
    with open(sweep_dir / "results.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["status"] == "done"]
    if not rows:
        raise SystemExit(f"{sweep_dir}/results.csv lists no finished job")
    best = max(rows, key=lambda row: float(row[metric]))
    if best.get("validated_on") == "test list":  # UCF101, HMDB51... without val_from_train
        print(f"warning: {metric} of this sweep was computed on the test list; choose on "
              f"data.val_from_train=0.1 for a number a paper can use", file=sys.stderr)
    return best


def main(sweep_dir: Path, video: Path) -> None:
    best = best_job(sweep_dir)
    model = vidtl.load(best["checkpoint"], custom_imports=CUSTOM_IMPORTS, device="cpu")
    with av.open(str(video)) as container:  # every frame, uint8 (T, H, W, C)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    from_path = model.predict(video, top_k=3)
    from_tensor = model.predict(frames, top_k=3)
    print(json.dumps({
        "job": best["job"], "checkpoint": best["checkpoint"],
        "validated_on": best.get("validated_on"),
        "module_class": type(model.module).__name__,
        "scale": round(model.module.log_scale.detach().exp().item(), 4),
        "from_path": from_path.classes, "from_tensor": from_tensor.classes,
        "probabilities": from_tensor.probabilities,
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
