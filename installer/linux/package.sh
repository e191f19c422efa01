#!/usr/bin/env bash
# Pack a built dist/jarvis/ into a tarball a Linux user unpacks and installs without root:
#   installer/linux/package.sh [DIST_DIR] [OUT_DIR]     -> OUT_DIR/jarvis-VERSION-linux-ARCH[-cuda].tar.gz
# Inside: the one-folder app plus install.sh (per-user install, menu entry, optional autostart).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dist="$(cd "${1:-$root/dist}" && pwd)"
out="${2:-$dist}"
app="$dist/jarvis"
[ -x "$app/jarvis" ] || { echo "package: $app/jarvis is missing: run installer/build.sh first" >&2; exit 1; }
version=$("$app/jarvis" --version | awk '{print $2}')
variant=$(grep -qi cuda "$app/BUILD.txt" 2>/dev/null && echo "-cuda" || true)
name="jarvis-$version-linux-$(uname -m)$variant"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -a "$app" "$stage/$name"
install -m 755 "$here/install.sh" "$stage/$name/install.sh"
install -m 644 "$root/resources/icons/jarvis.png" "$stage/$name/jarvis.png"
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "packed $out/$name.tar.gz: $(du -h "$out/$name.tar.gz" | cut -f1)"
