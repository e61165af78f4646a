"""Resident memory when decord readers are kept open, one per video, as some loaders cache them.

vidtl opens a reader per clip and drops it (see tests/test_data_memory.py for the flat curve);
this shows what keeping them costs, on the synthetic default dataset's training videos.

    python benchmarks/kept_readers_memory.py [--clips 3000]
    python benchmarks/kept_readers_memory.py --smoke --data-dir /tmp/x   # checks the script
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
    parser.add_argument("--smoke", action="store_true", help="a tiny dataset and 20 clips")
    args = parser.parse_args()
    spec = SyntheticVideoSpec()
    if args.smoke:
        args.clips = 20
        spec = SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=12, width=64, height=48)
    root = ensure_synthetic_dataset(args.data_dir / ("synthetic_smoke" if args.smoke
                                                     else "synthetic"), spec)
    records = load_index("ucf101", root).subsets["train"]
    rng = np.random.default_rng(0)
    kept: dict[Path, decord.VideoReader] = {}
    for i in range(args.clips + 1):
        path = records[i % len(records)].path
        if path not in kept:
            kept[path] = decord.VideoReader(str(path), num_threads=1)
        reader = kept[path]
        reader.get_batch(np.sort(rng.integers(0, len(reader), 8)).tolist()).asnumpy()
        if i % 500 == 0 or i == args.clips:
            print(f"{i} clips, {len(kept)} readers open: {resident_mib():.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
