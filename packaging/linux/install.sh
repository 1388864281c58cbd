#!/bin/sh
# Install SepSum for the current user: the bundle under ~/.local/opt, a launcher and a menu entry.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-$HOME/.local}
mkdir -p "$prefix/opt" "$prefix/bin" "$prefix/share/applications" "$prefix/share/icons/hicolor/256x256/apps"
rm -rf "$prefix/opt/sepsum"
cp -R "$here/sepsum" "$prefix/opt/sepsum"
ln -sf "$prefix/opt/sepsum/sepsum" "$prefix/bin/sepsum"
if [ -f "$here/sepsum-256.png" ]; then
  cp "$here/sepsum-256.png" "$prefix/share/icons/hicolor/256x256/apps/sepsum.png"
fi
sed "s|^Exec=.*|Exec=$prefix/opt/sepsum/sepsum gui %F|" "$here/sepsum.desktop" > "$prefix/share/applications/sepsum.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$prefix/share/applications" || true
echo "SepSum installed: run 'sepsum' or open it from the applications menu."
