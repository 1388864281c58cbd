"""Smoke-test the built bundle: version, an offline summary with the bundled model, the GUI offscreen.

Run by ``make package-test`` after ``make package``. The summary runs with networking
disabled (``unshare -n``) and an empty SEPSUM_HOME, so it must find the bundled model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = ROOT / "dist" / "sepsum" / "sepsum"


def check(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    print(f"[{elapsed:6.1f} s] exit {result.returncode}: {' '.join(cmd[-6:])}")
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-3000:], sep="\n")
        raise SystemExit(f"smoke test failed: {' '.join(cmd)}")
    return result


def main() -> int:
    if not EXE.exists():
        sys.exit(f"{EXE} not found: run 'make package' first")
    home = Path(tempfile.mkdtemp(prefix="sepsum-smoke-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEPSUM_")}
    env.update(SEPSUM_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    offline = ["unshare", "-n"] if shutil.which("unshare") and os.geteuid() == 0 else []

    version = check([str(EXE), "--version"], env, 60).stdout.strip()
    print("version:", version)

    result = check(offline + [str(EXE), "summarize", str(ROOT / "resources" / "sample.md"),
                              "--length", "short", "--format", "json"], env, 900)
    payload = json.loads(result.stdout)
    payload = payload[0] if isinstance(payload, list) else payload
    summary = payload.get("summary", "")
    if len(summary.split()) < 5:
        raise SystemExit(f"smoke test failed: empty summary ({summary!r})")
    print("summary words:", len(summary.split()), "| stats:", {k: payload["stats"].get(k) for k in
          ("input_tokens", "output_tokens", "kv_bytes_peak", "seconds")})

    shot = home / "window.png"
    started = time.perf_counter()
    check(offline + [str(EXE), "gui", "--screenshot", str(shot), "--exit-when-done"], env, 120)
    cold = time.perf_counter() - started
    if not shot.exists() or shot.stat().st_size < 1000:
        raise SystemExit("smoke test failed: the GUI wrote no screenshot")
    print(f"GUI start to screenshot and exit: {cold:.1f} s")
    shutil.rmtree(home, ignore_errors=True)
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
