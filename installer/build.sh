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
  scripts/setup.sh >/dev/null   # the Debian packages; .venv itself is not used
  venv=.venv-cuda
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  torch_pin=$(grep -E '^torch==' requirements.txt)
  stamp="$venv/.setup-$(cat requirements.txt requirements-nodeps.txt requirements-build.txt pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "build: installing the CUDA stack into $venv (downloads several GB the first time)"
    pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
    # torch straight from the index (PyPI's Linux wheels are the CUDA build), never from a local wheel
    # mirror that may hold the +cpu build. TORCH_INDEX_URL picks another index (e.g. a cu12x one).
    PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS="" "${pip[@]}" --index-url "${TORCH_INDEX_URL:-https://pypi.org/simple}" \
      "$torch_pin"
    "${pip[@]}" -r requirements.txt
    "${pip[@]}" --no-deps -r requirements-nodeps.txt
    "${pip[@]}" --no-deps -e .
    "${pip[@]}" -r requirements-build.txt
    rm -f "$venv"/.setup-*
    touch "$stamp"
  fi
  "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'build: torch in $venv is not a CUDA build')"
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
