#!/usr/bin/env bash
# One-shot GPU check (issue 16) for a Linux machine with an NVIDIA GPU, in under 10 minutes once .venv-cuda exists:
#   1. .venv-cuda (scripts/setup-cuda.sh: torch's CUDA build, the cu12 cuBLAS for Whisper, test packages)
#   2. the GPU-marked tests (CUDA-graph frames equal generate() in bf16 and fp16, Whisper on CUDA, NVML, placement)
#   3. jarvis bench tts: csm-1b's full architecture with random weights, plain generate() vs the fast path
#   4. jarvis bench pipeline: spoken turns with Whisper on CUDA
# Results: benchmarks/results/tts-gpu-<gpu>.json and pipeline-gpu-<gpu>.json, then a summary.
# Usage: scripts/gpu-check.sh [--dry-run] [--image [WHEELS]]
#   --dry-run  check the plan and print it; runs nothing, needs no GPU
#   --image    on a bare GPU image that cannot reach a package registry (a lent cloud GPU): its python3 must hold
#              torch's CUDA build; wheels in WHEELS (default .whl: transformers, platformdirs, rapidfuzz at Jarvis's pins)
#              go to a temporary folder first, no .venv-cuda is made, and the steps whose packages the image lacks
#              (Whisper: faster-whisper and the cu12 libraries; the pipeline: the audio stack) are skipped and
#              named. Logs and results are copied to $OUT when it is set.
#   --fetch-wheels [WHEELS]  (on a machine with a registry) download those wheels, at requirements.txt's pins,
#              for the image's CPython (IMAGE_PYTHON, default 3.12) into WHEELS (default .whl), then exit
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0 image=0 wheels=.whl
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --fetch-wheels)
      dest=${2:-.whl}; mkdir -p "$dest"
      for name in transformers platformdirs rapidfuzz; do
        pin=$(grep -iE "^$name==" requirements.txt) || { echo "error: no $name pin in requirements.txt" >&2; exit 1; }
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${IMAGE_PYTHON:-3.12}" \
          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$dest" "$pin"
      done
      ls -l "$dest"; exit 0 ;;
    --image) image=1; if [ -n "${2:-}" ] && [ "${2#--}" = "$2" ]; then wheels=$2; shift; fi ;;
    *) echo "error: unknown option $1 (use --dry-run, --image [WHEELS] or nothing)" >&2; exit 2 ;;
  esac
  shift
done
py=.venv-cuda/bin/python
[ "$image" = 1 ] && py=python3

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
if [ "$image" = 1 ] && [ "$dry" = 0 ]; then
  if [ -d "$wheels" ] && ls "$wheels"/*.whl >/dev/null 2>&1; then
    site=$(mktemp -d /tmp/gpu-check-site.XXXXXX)
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$wheels"/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: python3 here has no CUDA torch')"
fi
if [ "$image" = 1 ]; then
  if "$py" -c "import RealtimeSTT, faster_whisper, piper" 2>/dev/null && command -v pulseaudio >/dev/null; then
    steps=("${steps[@]:1}")     # no setup: no registry to install from
  else
    steps=("${steps[@]:1:2}")   # and no pipeline bench: it needs the audio stack
    echo "gpu-check: skipping the pipeline bench: this image lacks RealtimeSTT/faster-whisper/piper or pulseaudio"
  fi
fi
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
failed=0
for step in "${steps[@]}"; do
  echo "gpu-check: $step"
  $step || { echo "gpu-check: FAILED ($?): $step"; failed=1; }
done
"$py" - "$tts_out" "$pipe_out" <<'PY'
import json, os, sys
tts, pipe = (json.load(open(p)) if os.path.exists(p) else None for p in sys.argv[1:3])
if tts is None:
    sys.exit(f"summary: {sys.argv[1]} was not written")
pipe = pipe or {"stages_ms": "not run", "voice_to_voice_ms": "not run"}
fast, plain = tts["fast_path"], tts.get("plain_generate", {})
print("summary (targets: first audio <= 80 ms, RTF <= 0.10, peak VRAM <= 5 GB, >= 3x generate; Whisper <= 60 ms):")
print(f"  CSM fast path on {tts['device']} {tts['dtype']}: first audio {fast['time_to_first_audio_ms']} ms, "
      f"RTF {fast['rtf']}, peak {fast['peak_memory_gb']} GB, CUDA graphs {fast.get('cuda_graphs')}, "
      f"{tts.get('speedup_rtf')}x plain generate (RTF {plain.get('rtf')})")
print(f"  pipeline stages (ms): {json.dumps(pipe.get('stages_ms'))[:400]}")
print(f"  voice to voice (ms): {json.dumps(pipe.get('voice_to_voice_ms'))[:400]}")
PY
echo "gpu-check: done in $(( $(date +%s) - start )) s"
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then cp -f "$tts_out" "$OUT/" 2>/dev/null || true; cp -f "$pipe_out" "$OUT/" 2>/dev/null || true; fi
exit $failed
