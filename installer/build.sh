#!/usr/bin/env bash
# Build the one-folder app dist/jarvis/ with PyInstaller, then run its self-test.
# Usage: installer/build.sh [--cuda] [DIST_DIR]   (default: dist/)
#   CPU build: the project's .venv (scripts/setup.sh). About 4 minutes and 1.6 GB on a 2-core machine.
#   --cuda: a separate .venv-cuda with PyPI's CUDA build of torch and NVIDIA's libraries (Linux; see
#           installer/README.md for Windows). Several GB; the self-test runs on the CPU if there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
variant=cpu
if [ "${1:-}" = "--cuda" ]; then variant=cuda; shift; fi
dist=${1:-dist}

if [ "$variant" = cpu ]; then
  scripts/setup.sh
  venv=.venv
else
  scripts/setup-cuda.sh requirements-build.txt
  venv=.venv-cuda
fi
stamp="$venv/.build-$(sha256sum requirements-build.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-build.txt
  touch "$stamp"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
JARVIS_BUILD_VARIANT=$variant "$venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$dist" \
  --workpath "$work" installer/jarvis.spec
echo "built $dist/jarvis ($variant) in $(( $(date +%s) - start )) s: $(du -sh "$dist/jarvis" | cut -f1)"
JARVIS_HOME="$work/home" "$dist/jarvis/jarvis" --self-test
