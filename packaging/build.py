"""Build the one-folder desktop bundle (PyInstaller) and a Linux .tar.gz with an installer script.

Run by ``make package``. Builds from a lean virtual environment (CPU torch, runtime
dependencies only, PyInstaller) in ``.cache/package-venv`` so dev tools stay out of the
bundle, and carries the converted default model so the first start needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "package-venv"
DIST = ROOT / "dist"
PYINSTALLER = "pyinstaller==6.22.3"


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def lean_venv() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".built"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        if not python.exists():
            run([sys.executable, "-m", "venv", str(VENV)])
        run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             str(ROOT), PYINSTALLER])
        stamp.touch()
    else:  # refresh our own code only
        run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--force-reinstall", str(ROOT)])
    return python


def default_model_dir() -> Path:
    home = Path(os.environ.get("SEPSUM_HOME", ROOT / ".cache" / "sepsum-home"))
    folder = home / "models" / "smollm2-135m-instruct"
    if not (folder / "model.safetensors").exists():
        sys.exit(f"the default model is not installed in {folder}: run 'make setup' first")
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def make_archive(bundle: Path, version: str) -> Path:
    archive = DIST / f"sepsum-{version}-linux-x86_64.tar.gz"
    top = f"sepsum-{version}"
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=f"{top}/sepsum")
        tar.add(ROOT / "packaging" / "linux" / "install.sh", arcname=f"{top}/install.sh")
        tar.add(ROOT / "resources" / "sepsum.desktop", arcname=f"{top}/sepsum.desktop")
        for icon in sorted((ROOT / "resources").glob("sepsum*.png")) + sorted((ROOT / "resources").glob("*.svg")):
            tar.add(icon, arcname=f"{top}/{icon.name}")
    return archive


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from app import __version__

    python = lean_venv()
    env = dict(os.environ, SEPSUM_BUNDLE_MODEL=str(default_model_dir()))
    started = time.perf_counter()
    run([str(python), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "pyinstaller"),
         str(ROOT / "packaging" / "sepsum.spec")], env=env)
    bundle = DIST / "sepsum"
    # Drop what a CPU bundle never loads: torch's C++ headers and static libraries.
    shutil.rmtree(bundle / "_internal" / "torch" / "include", ignore_errors=True)
    # torch/bin holds test programs and protoc; torch only needs torch_shm_manager at import.
    for tool in (bundle / "_internal" / "torch" / "bin").glob("*"):
        if tool.name != "torch_shm_manager":
            shutil.rmtree(tool) if tool.is_dir() else tool.unlink()
    built_s = time.perf_counter() - started
    archive = make_archive(bundle, __version__)
    print(f"bundle: {bundle} ({folder_bytes(bundle) / 1e6:.0f} MB) built in {built_s:.0f} s")
    print(f"archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
