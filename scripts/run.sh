#!/usr/bin/env bash
# Set up (if needed) and start Jarvis. Extra arguments go to the jarvis command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/jarvis "$@"
