"""Where SepSum keeps its files: one data folder, overridable with ``SEPSUM_HOME``.

Tests set ``SEPSUM_HOME`` to a temporary folder so they never touch the real home.
The default follows the XDG layout on Linux and the QStandardPaths-compatible
locations on Windows and macOS.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "SepSum"


def home() -> Path:
    """The root of SepSum's user data (models, registry, settings, history)."""
    override = os.environ.get("SEPSUM_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "sepsum"


def models_dir() -> Path:
    return home() / "models"


def registry_file() -> Path:
    return home() / "models.json"


def settings_file() -> Path:
    return home() / "settings.json"


def history_db() -> Path:
    return home() / "history.sqlite3"


def downloads_dir() -> Path:
    return home() / "downloads"


def ensure(path: Path) -> Path:
    """Create ``path`` (a folder) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path
