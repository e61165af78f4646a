"""Resident memory when decord readers are kept open, one per video, as some loaders cache them.

vidtl opens a reader per clip and drops it (see tests/test_data_memory.py for the flat curve);
this shows what keeping them costs, on the synthetic default dataset's training videos.

    python benchmarks/kept_readers_memory.py [--clips 3000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidtl.data.annotations.index import load_index
from vidtl.data.tools.synthetic import SyntheticVideoSpec, ensure_synthetic_dataset

REPO = Path(__file__).resolve().parents[1]


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def main() -> None:
    import decord

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    args = parser.parse_args()
    root = ensure_synthetic_dataset(args.data_dir / "synthetic", SyntheticVideoSpec())
    records = load_index("ucf101", root).subsets["train"]
    rng = np.random.default_rng(0)
    kept: dict[Path, decord.VideoReader] = {}
    for i in range(args.clips + 1):
        path = records[i % len(records)].path
        if path not in kept:
            kept[path] = decord.VideoReader(str(path), num_threads=1)
        reader = kept[path]
        reader.get_batch(np.sort(rng.integers(0, len(reader), 8)).tolist()).asnumpy()
        if i % 500 == 0:
            print(f"{i} clips, {len(kept)} readers open: {resident_mib():.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
