#!/usr/bin/env bash
# Build the one-folder app dist/jarvis/ with PyInstaller, then run its self-test.
# Usage: installer/build.sh [DIST_DIR]   (default: dist/)   About 3.5 minutes and 2 GB on a 2-core CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dist=${1:-dist}
stamp=".venv/.build-$(sha256sum requirements-build.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-build.txt
  touch "$stamp"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
.venv/bin/pyinstaller --noconfirm --log-level WARN --distpath "$dist" --workpath "$work" installer/jarvis.spec
echo "built $dist/jarvis in $(( $(date +%s) - start )) s: $(du -sh "$dist/jarvis" | cut -f1)"
JARVIS_HOME="$work/home" "$dist/jarvis/jarvis" --self-test
