#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run of at most 10 minutes on one GPU (written for
# an H100/H200 machine with 16 cores; nothing is downloaded). Each step has its own time limit,
# so a slow step cannot eat the others' time, and a failed step does not stop the rest:
#
#   1. ResNet-50 TSN-8 training (bf16, channels-last, batch 32): the model-only ceiling and
#      end-to-end clips/s from video, the frame store and the shard stream, plus the rows that
#      move the crop (and the JPEG decoding) to the GPU   benchmarks/data_throughput.py --gpu
#   2. fp32 against bf16, fp16, channels-last and torch.compile  benchmarks/precision.py
#   3. torchcodec NVDEC against its CPU decoding                  benchmarks/decoders.py --nvdec
#   4. timelines of a 60 s video (vidtl-predict mode=timeline), the torch rows on CUDA, and
#      the decord seek-per-window baseline                        benchmarks/timeline.py --gpu
#
# Each script writes its own table into docs/benchmarks.md; copies of the tables, the JSON
# results and the logs go to $OUT (default logs/benchmarks/gpu_check). Run from anywhere:
#   bash benchmarks/gpu_check.sh
# It needs an environment with vidtl installed (pip install -e '.[dev]') and ../shared/videos
# (or VIDTL_SHARED) for the real clips.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/benchmarks/gpu_check}
SHARED=${VIDTL_SHARED:-$PWD/../shared}
mkdir -p "$OUT"
export WANDB_MODE=disabled

if ! python -c "import torch, vidtl" 2> /dev/null; then
  echo "gpu_check: torch or vidtl cannot be imported by $(command -v python): activate the" \
    "environment where vidtl is installed (pip install -e '.[dev]')" | tee "$OUT/summary.txt"
  exit 1
fi
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU visible to torch; nothing measured" | tee "$OUT/summary.txt"
  exit 1
fi
python -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" \
  | tee "$OUT/summary.txt"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, record the outcome
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  echo "$name: exit $status after $((SECONDS - start)) s (limit $limit s)" | tee -a "$OUT/summary.txt"
}

step data_throughput 260 python benchmarks/data_throughput.py --gpu --repeats 1 --clips 120 \
  --copies 8 --videos "$SHARED/videos" --out "$OUT/data"
step precision 140 python benchmarks/precision.py --out "$OUT/precision"
step nvdec 60 python benchmarks/decoders.py --nvdec --ucf-videos 40 --shared "$SHARED"
step timeline 90 python benchmarks/timeline.py --gpu --out "$OUT/timeline"

cp docs/benchmarks.md "$OUT/benchmarks.md"
cat "$OUT/summary.txt"
