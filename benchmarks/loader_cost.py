"""Where a DataLoader worker's time goes: loading clips versus collating the batch.

Reads the frame store that ``benchmarks/data_throughput.py`` prepared and times, per batch of 8,
the clips' ``__getitem__`` (open, sample, decode) and the collation into one batch, once in the
main process (``num_workers=0``) and once in a worker process (``num_workers=1``), where
PyTorch collates into fresh shared memory for the hand-over to the main process.

    python benchmarks/data_throughput.py   # once, to prepare the data
    python benchmarks/loader_cost.py
    python benchmarks/loader_cost.py --smoke --data /tmp/x   # a tiny store: checks the script
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from vidtl.assembly.data import build_datamodule, data_options

REPO = Path(__file__).resolve().parents[1]


class TimedClips(Dataset):
    """Clips of ``clips`` with the seconds each ``__getitem__`` took."""

    def __init__(self, clips: Dataset, length: int) -> None:
        self.clips, self.length = clips, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        start = time.perf_counter()
        clip, _ = self.clips[index % len(self.clips)]
        return clip, torch.tensor(time.perf_counter() - start)


def timed_collate(items):
    start = time.perf_counter()
    batch = default_collate(items)
    return batch, time.perf_counter() - start


def tiny_frame_store(folder: Path) -> Path:
    """A tiny synthetic dataset under ``folder`` and its frame store in ``folder/frames``."""
    from vidtl.data.annotations.index import load_index
    from vidtl.data.frames.prepared_folder import PrepareSettings
    from vidtl.data.tools.prepare import prepare_dataset
    from vidtl.data.tools.synthetic import SyntheticVideoSpec, ensure_synthetic_dataset

    spec = SyntheticVideoSpec(groups=2, clips_per_group=1, num_frames=12, width=64, height=48)
    root = ensure_synthetic_dataset(folder / "dataset", spec)
    videos = [r.path for r in load_index("ucf101", root).subsets["train"]]
    prepare_dataset(videos, root, folder / "frames", PrepareSettings(short_side=48), workers=1,
                    progress=False)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "logs" / "benchmarks" / "data")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--smoke", action="store_true",
                        help="prepare a tiny frame store under --data and time 2 batches")
    args = parser.parse_args()
    data = {"root": args.data / "dataset", "format": "folder"}
    if args.smoke:
        args.batches = 2
        data = {"root": tiny_frame_store(args.data), "format": "ucf101"}
    datamodule = build_datamodule(data_options(
        **data, source="frames", frames_root=args.data / "frames", augment_on="device",
        num_workers=0))
    clips = TimedClips(datamodule.dataset("train"), 8 * args.batches)
    for workers in (0, 1):
        loader = DataLoader(clips, batch_size=8, num_workers=workers, collate_fn=timed_collate)
        load = collate = 0.0
        start = time.perf_counter()
        for (batch, seconds), collate_seconds in loader:
            load += seconds.sum().item()
            collate += collate_seconds
            mib = batch.numel() / 2**20
        wall = time.perf_counter() - start
        print(f"num_workers={workers}: per clip {1000 * load / len(clips):.1f} ms loading, "
              f"per batch of 8 ({mib:.0f} MiB) {1000 * collate / args.batches:.1f} ms "
              f"collating; {len(clips) / wall:.0f} clips/s", flush=True)


if __name__ == "__main__":
    main()
