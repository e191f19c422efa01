#!/usr/bin/env bash
# Set up .venv-cuda: PyPI's CUDA build of torch, Jarvis's packages, and the CUDA 12 cuBLAS that
# CTranslate2 (Whisper) needs (requirements-cuda.txt; Jarvis finds them at start, jarvis/cuda_libs.py).
# Linux with an NVIDIA driver; the first run downloads several GB. Used by installer/build.sh --cuda and
# scripts/gpu-check.sh. Extra requirement files to install may follow (e.g. requirements-build.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-cuda
scripts/setup.sh >/dev/null   # the Debian packages; .venv itself is not used
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
torch_pin=$(grep -E '^torch==' requirements.txt)
stamp="$venv/.setup-$(cat requirements.txt requirements-nodeps.txt requirements-cuda.txt pyproject.toml scripts/setup-cuda.sh "$@" \
  | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup-cuda: installing the CUDA stack into $venv (downloads several GB the first time)"
  pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
  # torch straight from the index (PyPI's Linux wheels are the CUDA build), never from a local wheel
  # mirror that may hold the +cpu build. TORCH_INDEX_URL picks another index (e.g. a cu12x one).
  PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS="" "${pip[@]}" --index-url "${TORCH_INDEX_URL:-https://pypi.org/simple}" \
    "$torch_pin"
  # llama.cpp from the wheel scripts/setup.sh compiled for any CPU of this kind: pip would otherwise compile it
  # for this very CPU (-march=native), and a CUDA build made from it could crash on another one.
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/jarvis/wheels"
  llama_wheel=("$wheels/llama_cpp_python-$(sed -n 's/^llama-cpp-python==//p' requirements.txt)-"*.whl)
  "${pip[@]}" --no-deps --force-reinstall "${llama_wheel[0]}"
  "${pip[@]}" -r requirements.txt
  "${pip[@]}" --no-deps -r requirements-nodeps.txt
  "${pip[@]}" -r requirements-cuda.txt
  "${pip[@]}" --no-deps -e .
  for extra in "$@"; do "${pip[@]}" -r "$extra"; done
  rm -f "$venv"/.setup-*
  touch "$stamp"
fi
"$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'setup-cuda: torch in $venv is not a CUDA build')"
