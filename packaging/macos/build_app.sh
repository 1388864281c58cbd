#!/bin/sh
# Build SepSum.app and a .dmg on macOS (Apple silicon or Intel). Run from the repository root.
# Needs: Python 3.11, Xcode command-line tools (hdiutil, codesign ship with macOS).
set -eu
python3 -m venv .cache/package-venv
. .cache/package-venv/bin/activate
pip install --quiet . pyinstaller==6.22.3     # torch 2.13.0 on macOS is the CPU/MPS build
sepsum models install-default                  # converts the default model once
SEPSUM_BUNDLE_MODEL="$(python -c 'from app.engine.default_model import default_model_dir; print(default_model_dir())')" \
  pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/sepsum.spec
# Wrap the one-folder bundle in an .app: the folder goes to Contents/MacOS.
app=dist/SepSum.app
rm -rf "$app" && mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
cp -R dist/sepsum/. "$app/Contents/MacOS/"
cp packaging/macos/Info.plist "$app/Contents/Info.plist"
[ -f resources/sepsum.icns ] && cp resources/sepsum.icns "$app/Contents/Resources/"
codesign --force --deep --sign - "$app"        # ad-hoc; use a Developer ID and notarytool to distribute
hdiutil create -volname SepSum -srcfolder "$app" -ov -format UDZO dist/SepSum.dmg
echo "built $app and dist/SepSum.dmg"
