"""Decoders side by side: decord2, torchcodec and PyAV on real clips, as vidtl's loader uses them.

Every row does the same work per clip: open the file, decode the 8 frames a sampler asks for,
close it (vidtl opens a reader per clip). Videos: the real clips of ``../shared/videos`` (340x256
to 1920x1080, h264 and mpeg4) and the training videos of ``../shared/data/ucf101_subset20``
(320x240 h264). Rows: clips/s with 1 and 2 processes, for segment sampling (TSN: one frame from
each of 8 segments, spread over the video) and dense sampling (8 consecutive frames at a random
start); the median first-frame latency (open + frame 0) over the videos.

    python benchmarks/decoders.py [--ucf-videos 60] [--shared ../shared]  # docs/benchmarks.md
    python benchmarks/decoders.py --smoke --docs /tmp/page.md   # two tiny videos (tests)
    python benchmarks/decoders.py --nvdec    # on a GPU: torchcodec NVDEC against its CPU path

``--shared`` defaults to ../shared beside the checkout, or $VIDTL_SHARED. Each table names the
command that wrote it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import SHARED, benchmark_parser, docs_page, machine, table_command  # noqa: E402
from runner import Table, run_rows  # noqa: E402

from vidtl.data.clips.sampling import DenseSampler, SegmentSampler  # noqa: E402
from vidtl.data.frames.decoders import open_video  # noqa: E402

BACKENDS = ("decord", "torchcodec", "pyav")
SAMPLERS = {"segment": SegmentSampler(8), "dense": DenseSampler(8, 1)}
TABLE = Table("benchmarks/decoders.py")
NVDEC_TABLE = Table("benchmarks/decoders.py --nvdec")
PROCESSES = (1, 2)


def decode_clips(backend: str, sampling: str, videos: list[str], seed: int) -> int:
    """Open, decode one sampled clip of, and drop each video; the number of clips."""
    rng = np.random.default_rng(seed)
    sampler = SAMPLERS[sampling]
    for path in videos:
        reader = open_video(path, backend)
        frames = reader.get_frames(sampler(len(reader), True, rng))
        assert frames.shape[0] == 8 and frames.dtype == np.uint8
        del reader
    return len(videos)


def clips_per_s(backend: str, sampling: str, videos: list[str], processes: int) -> float:
    """Clips per second over ``videos``, split over ``processes`` worker processes."""
    shares = [videos[i::processes] for i in range(processes)]
    # spawned, not forked: a forked child can hang on a lock that a decoder thread of this
    # process held at the fork (seen with torchcodec after first_frame_ms had run here)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(decode_clips, [backend] * processes, [sampling] * processes,
                      [s[:1] for s in shares], range(processes)))  # workers started, warm
        start = time.perf_counter()
        done = sum(pool.map(decode_clips, [backend] * processes, [sampling] * processes, shares,
                            range(processes)))
        return done / (time.perf_counter() - start)


def measure(backend: str, videos: list[str]) -> dict:
    """The row of ``backend``: clips/s of each sampling with each number of processes, and
    the first-frame latency."""
    row = {"backend": backend, "first_frame_ms": first_frame_ms(backend, videos)}
    for sampling in SAMPLERS:
        for processes in PROCESSES:
            row[f"{sampling}_{processes}p"] = clips_per_s(backend, sampling, videos, processes)
    return row


def first_frame_ms(backend: str, videos: list[str]) -> float:
    """Median milliseconds from opening a video to holding its first frame (after one untimed
    read, which pays for importing the decoder)."""
    open_video(videos[0], backend).get_frames(np.array([0]))
    times = []
    for path in videos:
        start = time.perf_counter()
        open_video(path, backend).get_frames(np.array([0]))
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def nvdec_rates(videos: list[str], repeats: int = 3) -> dict[str, dict[str, float]]:
    """torchcodec segment clips/s in this process on the CPU and with NVDEC (``cuda``), and how
    many files NVDEC left to the CPU (torchcodec's silent fallback, which vidtl reports)."""
    from vidtl.data.frames.torchcodec_reader import TorchCodecReader

    rates = {}
    for device in ("cpu", "cuda"):
        rng = np.random.default_rng(0)
        TorchCodecReader(videos[0], device=device).get_frames(np.array([0]))  # warm-up
        fallbacks, start = 0, time.perf_counter()
        for _ in range(repeats):
            for path in videos:
                reader = TorchCodecReader(path, device=device)
                reader.get_frames(SAMPLERS["segment"](len(reader), True, rng))
                fallbacks += reader.cpu_fallback
        rates[device] = {"clips_per_s": repeats * len(videos) / (time.perf_counter() - start),
                         "cpu_fallbacks": fallbacks / repeats}
    return rates


def write_nvdec(videos: list[str], docs: Path | None) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--nvdec needs a CUDA GPU")
    rates = nvdec_rates(videos)
    lines = [f"torchcodec on {len(videos)} real videos, 8-frame segment clips, one process, a "
             f"reader per clip ({machine()}; `{table_command()}`):", "",
             "| device | clips/s | files NVDEC left to the CPU |", "|---|---|---|"]
    for device, row in rates.items():
        lines.append(f"| {device} | {row['clips_per_s']:.1f} | {row['cpu_fallbacks']:.0f} |")
    print("\n".join(NVDEC_TABLE.write(lines, docs)))


def smoke_videos(folder: Path) -> list[str]:
    from vidtl.data.tools.synthetic import write_video

    rng = np.random.default_rng(0)
    paths = []
    for i, codec in enumerate(("h264", "mpeg4")):
        frames = rng.integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
        write_video(folder / f"v{i}.mp4", frames, fps=25, codec=codec)
        paths.append(str(folder / f"v{i}.mp4"))
    return paths


def real_videos(shared: Path, ucf_videos: int) -> list[str]:
    clips = sorted(str(p) for p in (shared / "videos").iterdir()
                   if p.suffix in (".mp4", ".avi"))
    subset = shared / "data" / "ucf101_subset20"
    listed = [line.split(",")[0] for line in (subset / "train.csv").read_text().splitlines()[1:]]
    return clips + [str(subset / p) for p in listed[:ucf_videos]]


def table(rows: list[dict], videos: int, kind: str) -> list[str]:
    """The table of ``rows``, with its markers and the command that wrote it."""
    header = "| backend | " + " | ".join(
        f"{s} clips/s, {p} process{'es' if p > 1 else ''}" for s in SAMPLERS
        for p in PROCESSES) + " | first frame (median ms) |"
    lines = [f"Decoders on {videos} {kind} videos, 8 frames per clip, a reader opened "
             f"per clip ({machine()}; `{table_command()}`):", "", header,
             "|---" * (len(SAMPLERS) * len(PROCESSES) + 2) + "|"]
    for row in rows:
        rates = " | ".join(f"{row[f'{s}_{p}p']:.1f}" for s in SAMPLERS for p in PROCESSES)
        lines.append(f"| {row['backend']} | {rates} | {row['first_frame_ms']:.1f} |")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, "two tiny videos")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--ucf-videos", type=int, default=60)
    parser.add_argument("--nvdec", action="store_true",
                        help="only torchcodec on the CPU against NVDEC (needs a GPU)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.nvdec:
        write_nvdec(real_videos(args.shared, args.ucf_videos), docs_page(args))
        return
    with tempfile.TemporaryDirectory() as folder:
        videos = smoke_videos(Path(folder)) if args.smoke else real_videos(args.shared,
                                                                          args.ucf_videos)
        rows = run_rows(BACKENDS, partial(measure, videos=videos))
    lines = table(list(rows.values()), len(videos), "tiny synthetic" if args.smoke else "real")
    print("\n".join(TABLE.write(lines, docs_page(args))))


if __name__ == "__main__":
    main()
