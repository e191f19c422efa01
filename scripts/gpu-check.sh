#!/usr/bin/env bash
# One-shot GPU check (issue 16) for a Linux machine with an NVIDIA GPU, in under 10 minutes once .venv-cuda exists:
#   1. .venv-cuda (scripts/setup-cuda.sh: torch's CUDA build, the cu12 cuBLAS/cuDNN for Whisper, test packages)
#   2. the GPU-marked tests (CUDA-graph frames equal generate() in bf16 and fp16, Whisper on CUDA, NVML, placement)
#   3. jarvis bench tts: csm-1b's full architecture with random weights, plain generate() vs the fast path
#   4. jarvis bench pipeline: spoken turns with Whisper on CUDA
# Results: benchmarks/results/tts-gpu-<gpu>.json and pipeline-gpu-<gpu>.json, then a summary.
# Usage: scripts/gpu-check.sh [--dry-run]   (--dry-run: check the plan and print it; runs nothing, needs no GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
py=.venv-cuda/bin/python

if gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) && [ -n "$gpu" ]; then
  echo "gpu-check: $gpu"
elif [ "$dry" = 1 ]; then
  gpu="no-gpu"
  echo "gpu-check: no NVIDIA GPU here (dry run: the plan only)"
else
  echo "error: no NVIDIA GPU found (nvidia-smi lists none): run this on a machine with one, or add --dry-run" >&2
  exit 3
fi
slug=$(echo "$gpu" | tr 'A-Z' 'a-z' | sed -E 's/nvidia //; s/[^a-z0-9]+/-/g; s/^-|-$//g')
tts_out=benchmarks/results/tts-gpu-$slug.json
pipe_out=benchmarks/results/pipeline-gpu-$slug.json

steps=(
  "scripts/setup-cuda.sh requirements-test.txt"
  "$py -m pytest -q -p no:cacheprovider -m gpu tests/gpu"
  "$py -m jarvis bench tts --device cuda --dtype bfloat16 --frames 125 --runs 3 --out $tts_out"
  "$py -m jarvis bench pipeline --turns 24 --no-peer --set listen.stt_device=cuda --set listen.stt_compute_type=float16 --json $pipe_out"
)
if [ "$dry" = 1 ]; then
  for f in scripts/setup-cuda.sh requirements-cuda.txt requirements-test.txt tests/gpu/test_gpu.py; do
    [ -e "$f" ] || { echo "error: $f is missing" >&2; exit 1; }
  done
  grep -q '"gpu:' pyproject.toml || { echo "error: the gpu test marker is not declared in pyproject.toml" >&2; exit 1; }
  for step in "${steps[@]}"; do echo "would run: $step"; done
  echo "would write: $tts_out $pipe_out"
  exit 0
fi

start=$(date +%s)
for step in "${steps[@]}"; do
  echo "gpu-check: $step"
  $step
done
"$py" - "$tts_out" "$pipe_out" <<'PY'
import json, sys
tts, pipe = (json.load(open(p)) for p in sys.argv[1:3])
fast, plain = tts["fast_path"], tts.get("plain_generate", {})
print("summary (targets: first audio <= 80 ms, RTF <= 0.10, peak VRAM <= 5 GB, >= 3x generate; Whisper <= 60 ms):")
print(f"  CSM fast path on {tts['device']} {tts['dtype']}: first audio {fast['time_to_first_audio_ms']} ms, "
      f"RTF {fast['rtf']}, peak {fast['peak_memory_gb']} GB, CUDA graphs {fast.get('cuda_graphs')}, "
      f"{tts.get('speedup_rtf')}x plain generate (RTF {plain.get('rtf')})")
print(f"  pipeline stages (ms): {json.dumps(pipe.get('stages_ms'))[:400]}")
print(f"  voice to voice (ms): {json.dumps(pipe.get('voice_to_voice_ms'))[:400]}")
PY
echo "gpu-check: done in $(( $(date +%s) - start )) s"
