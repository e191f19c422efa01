#!/usr/bin/env bash
# Install Jarvis for this user (no root): ./install.sh [--autostart] | ./install.sh --uninstall
# The app goes to ~/.local/opt/jarvis, `jarvis` to ~/.local/bin, a menu entry to ~/.local/share/applications.
# Uninstalling removes only those; settings, enrolled voices and logs stay (see `jarvis doctor` for where).
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
config="${XDG_CONFIG_HOME:-$HOME/.config}"
target="$HOME/.local/opt/jarvis"
bin="$HOME/.local/bin"
entry="$data/applications/jarvis.desktop"
autostart="$config/autostart/jarvis.desktop"

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$target" "$entry" "$autostart"
  [ -L "$bin/jarvis" ] && rm -f "$bin/jarvis"
  echo "Jarvis is uninstalled. Your settings, voices and logs are kept; delete them with the folders 'jarvis doctor' listed."
  exit 0
fi
case "${1:-}" in ""|--autostart) ;; *) echo "usage: ./install.sh [--autostart] | ./install.sh --uninstall" >&2; exit 2;; esac
[ -x "$src/jarvis" ] || { echo "install: run install.sh from the unpacked Jarvis folder" >&2; exit 2; }

if [ "$src" != "$target" ]; then
  rm -rf "$target.new"
  mkdir -p "$(dirname "$target")"
  cp -a "$src" "$target.new"
  rm -rf "$target"
  mv "$target.new" "$target"
fi
mkdir -p "$bin" "$(dirname "$entry")"
ln -sfn "$target/jarvis" "$bin/jarvis"
desktop_entry() {
  printf '[Desktop Entry]\nType=Application\nName=Jarvis\nComment=Offline desktop voice assistant\n'
  printf 'Exec=%s\nIcon=%s\nTerminal=false\nCategories=Utility;Accessibility;\n' "$target/jarvis" "$target/jarvis.png"
}
desktop_entry > "$entry"
if [ "${1:-}" = "--autostart" ]; then
  mkdir -p "$(dirname "$autostart")"
  { desktop_entry; echo "X-GNOME-Autostart-enabled=true"; } > "$autostart"
fi
echo "Jarvis is installed in $target. Start it from the menu or with: $bin/jarvis"
case ":$PATH:" in *":$bin:"*) ;; *) echo "($bin is not on your PATH: add it, or use the full path)";; esac
