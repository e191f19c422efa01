#!/usr/bin/env bash
# Set up (if needed) and run every CPU benchmark; results go to benchmarks/results/ (JSON) and the
# pipeline chart to docs/. Takes about 30 minutes on 2 cores. Usage: scripts/bench.sh [NAME_SUFFIX]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
suffix=${1:-cpu}
out=benchmarks/results
mkdir -p "$out" docs
export JARVIS_HOME="$(mktemp -d)"   # a clean Jarvis folder: the user's settings and voices are not used
jarvis=.venv/bin/jarvis
$jarvis bench pipeline --turns 24 --json "$out/pipeline-$suffix.json" --plot "docs/pipeline-$suffix.png"
# Each performance preset (high_quality with the bundled tiny.en: its small.en would be downloaded from the hub)
$jarvis bench pipeline --turns 24 --no-peer --preset low_latency --json "$out/pipeline-low-latency-$suffix.json"
$jarvis bench pipeline --turns 24 --no-peer --preset high_quality --set listen.stt_model=tiny.en \
  --json "$out/pipeline-high-quality-$suffix.json"
$jarvis bench components --out "$out/components-$suffix.json"
$jarvis bench idle --seconds 60 --out "$out/idle-$suffix.json"
$jarvis bench brain --out "$out/brain-local-$suffix.json"
