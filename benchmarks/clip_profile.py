"""Where a frame-store clip's time goes: each step of the loader's per-clip work, timed alone in
one process with one thread (as in a loader worker), with the design each step replaced.

Reads the frame store that ``benchmarks/data_throughput.py`` prepared (real 340x256 clips), warms
the page cache, then times ``--clips`` training clips step by step: open the frame file and its
index, sample 8 indices, read the 8 JPEGs, decode them (simplejpeg into one array, against
torchvision's ``decode_jpeg`` and a ``np.stack``, the previous design), the multi-scale crop
resized to 224, the flip, and the batch (stacking channels-last memory, against making each clip
contiguous first, the previous design); then the hand-over of a batch from a worker process
(fresh shared memory per batch, the previous design, against the reused slots of a
``SharedBatchPool``).

    python benchmarks/data_throughput.py   # once, to prepare the data
    python benchmarks/clip_profile.py      # writes its table into docs/benchmarks.md
    python benchmarks/clip_profile.py --smoke --docs /tmp/page.md   # a tiny store (tests)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from docs_section import REPO, benchmark_parser, docs_page, machine
from runner import Table, written_by
from torch.utils.data import Dataset, default_collate
from torchvision.io import decode_jpeg
from torchvision.transforms.v2 import functional as F

from vidtl.assembly.data import build_datamodule, data_options
from vidtl.data.clips.batch_pool import SharedBatchPool
from vidtl.data.clips.batches import ClipItem
from vidtl.data.clips.collate import collate_clips
from vidtl.data.loading.pooled_loader import PooledDataLoader

TABLE = Table("benchmarks/clip_profile.py")


def decode_and_stack(jpegs: list[torch.Tensor]) -> np.ndarray:
    """The previous design: torchvision's decoder, then one array of the frames."""
    return np.stack([image.permute(1, 2, 0).numpy() for image in decode_jpeg(jpegs)])


def collate_contiguous(clips: list[torch.Tensor]):
    """The previous design: each clip made contiguous by the transform, then stacked."""
    return default_collate([(c.contiguous(), 0) for c in clips])


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


def profile(dataset, clips: int) -> dict[str, float]:
    """Milliseconds per clip of each step (see the module docstring)."""
    rng = np.random.default_rng(0)
    transform, times = dataset.transform, defaultdict(float)
    done: list[torch.Tensor] = []

    def timed(step: str, function, *args, **options):
        start = time.perf_counter()
        result = function(*args, **options)
        times[step] += time.perf_counter() - start
        return result

    for i in range(clips):
        record = dataset.records[i % len(dataset.records)]
        reader = timed("open the frame file and its index", dataset.source.open, record.path)
        indices = timed("sample 8 frame indices", dataset.sampler, len(reader), True, rng)
        stored = reader.stored_index(indices)
        jpegs = timed("read the 8 JPEGs", reader.jpeg_bytes, stored)
        timed("decode: simplejpeg into one array (now)", reader.get_frames, indices)
        tensors = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
        frames = timed("decode: torchvision decode_jpeg + np.stack (before)", decode_and_stack,
                       tensors)
        clip = torch.as_tensor(frames).permute(0, 3, 1, 2)
        box = transform.random_box(*clip.shape[-2:], rng)
        crop = timed("multi-scale crop resized to 224", F.resized_crop, clip, *box,
                     [transform.crop_size] * 2, antialias=True)
        if i % 2:
            crop = timed("flip (half the clips)", crop.flip, -1)
        done.append(crop)
        if len(done) == 8:
            batch = [ClipItem(c, 0) for c in done]
            timed("batch: stack channels-last memory (now)", collate_clips, batch)
            timed("batch: each clip made contiguous, then stacked (before)", collate_contiguous,
                  done)
            done = []
    return {step: 1000 * seconds / clips for step, seconds in times.items()}


class Clips(Dataset):
    """The same 8 clips, ``count`` times over (for timing the hand-over)."""

    def __init__(self, clips: list[torch.Tensor], count: int) -> None:
        self.clips, self.count = clips, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return ClipItem(self.clips[index % len(self.clips)], 0)


def handover_ms(dataset, batches: int) -> dict[str, float]:
    """Milliseconds per clip to bring a batch of 8 from a worker to the main process, over what
    the main process pays to collate it: through fresh shared memory for each batch (PyTorch's
    way, before) and through the reused slots of a SharedBatchPool (now)."""
    clips = [dataset[i][0] for i in range(8)]
    ways = {"main process": (0, collate_clips), "fresh": (1, collate_clips),
            "pool": (1, SharedBatchPool(1))}
    timings = {}
    for way, (workers, collate) in ways.items():
        loader = PooledDataLoader(Clips(clips, 8 * batches), batch_size=8, num_workers=workers,
                                  collate_fn=collate)
        iterator = iter(loader)
        next(iterator)
        start = time.perf_counter()
        for _ in iterator:
            pass
        timings[way] = (time.perf_counter() - start) / ((batches - 1) * 8)
    base = timings["main process"]
    return {
        "hand-over of the batch from a worker: fresh shared memory (before)":
            1000 * (timings["fresh"] - base),
        "hand-over of the batch from a worker: reused slots of SharedBatchPool (now)":
            1000 * (timings["pool"] - base),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "a tiny frame store in a temporary folder, 16 clips")
    parser.add_argument("--data", type=Path, default=REPO / "logs" / "benchmarks" / "data",
                        help="the folder data_throughput.py prepared")
    parser.add_argument("--clips", type=int, default=400)
    return parser


def measure(data: Path, clips: int, smoke: bool) -> dict[str, float]:
    """Milliseconds per clip of each step, over the frame store that ``data`` holds (a tiny one
    made there for a smoke run)."""
    options = {"root": data / "dataset", "format": "folder"}
    if smoke:
        options = {"root": tiny_frame_store(data), "format": "ucf101"}
    datamodule = build_datamodule(data_options(**options, source="frames",
                                               frames_root=data / "frames", num_workers=0))
    dataset = datamodule.dataset("train")
    profile(dataset, len(dataset.records))  # warm the page cache and the code paths
    steps = profile(dataset, clips)
    steps.update(handover_ms(dataset, 8 if smoke else 60))
    return steps


def main() -> None:
    args = build_parser().parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        args.clips = 16
        with tempfile.TemporaryDirectory() as folder:  # never in a prepared data folder
            steps = measure(Path(folder), args.clips, smoke=True)
    else:
        steps = measure(args.data, args.clips, smoke=False)
    for step, ms in steps.items():
        print(f"{ms:7.2f} ms  {step}", flush=True)
    lines = [f"{written_by(f'{machine()}, one thread')}: milliseconds per training clip "
             f"(8 frames of 340x256, 224 px crop), {args.clips} clips.", "",
             "| step | ms per clip |", "|---|---|"]
    lines += [f"| {step} | {ms:.2f} |" for step, ms in steps.items()]
    TABLE.write(lines, docs_page(args))


if __name__ == "__main__":
    main()
