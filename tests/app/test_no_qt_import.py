"""sepllm_core and every non-GUI module of app import with PySide6 blocked (only app.gui may use Qt)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, json, sys
    from pathlib import Path

    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PySide6", "shiboken6"):
                raise ImportError(f"blocked: {name} imported outside app.gui")
            return None

    sys.meta_path.insert(0, BlockQt())
    repo = Path(sys.argv[1])
    modules = []
    for package in ("sepllm_core", "app"):
        for file in sorted((repo / package).rglob("*.py")):
            parts = file.relative_to(repo).with_suffix("").parts
            if parts[:2] == ("app", "gui") or parts[-1] == "__main__":
                continue
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    failures = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    try:
        importlib.import_module("app.gui.main_window")
        blocked = False
    except ImportError:
        blocked = True
    qt_loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6"))
    print(json.dumps({"modules": modules, "failures": failures, "blocked": blocked, "qt_loaded": qt_loaded}))
""")


def test_core_and_app_import_without_pyside6():
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "sepllm_core.cache" in report["modules"] or "sepllm_core.events" in report["modules"]
    assert "app.cli.gui_cmd" in report["modules"] and "app.history" in report["modules"]
    assert report["failures"] == {}
    assert report["blocked"], "the import blocker did not stop PySide6 (the test would prove nothing)"
    assert report["qt_loaded"] == []
