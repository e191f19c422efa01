#!/usr/bin/env bash
# Renew the README's screenshots (docs/screenshots/): the window tests take them as they run, into a temporary
# folder normally; here into docs/screenshots. The frozen tray app's needs the PyInstaller bundle (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
JARVIS_SCREENSHOTS="$PWD/docs/screenshots" exec scripts/test.sh tests/ui tests/installer "$@"
