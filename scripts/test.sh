#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, end-to-end audio tests included.
# Extra arguments go to pytest (e.g. -m "not slow", -k speakers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/lint-imports --config pyproject.toml
exec .venv/bin/python -m pytest "$@"
