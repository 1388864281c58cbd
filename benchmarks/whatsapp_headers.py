"""Cost of the CLDR header grammars: import, first parse (grammars compiled then), a 2,000-line chat.

Each round runs in a fresh process so imports and compiled regexes start cold; medians are reported.
Also times deriving the table from Babel (what the shipped cldr_data.py saves at run time).

    .venv/bin/python -m benchmarks.whatsapp_headers [--rounds 5] [--baseline DIR] \\
        [--out docs/benchmarks/whatsapp_headers.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHATS = REPO.parent / "shared" / "data" / "chats" / "whatsapp"
_ROUND = """
import json, sys, time
t0 = time.perf_counter()
from app.ingest.chats import detect_chat
t1 = time.perf_counter()
detect_chat(sys.argv[1]); t2 = time.perf_counter()
detect_chat(sys.argv[2]); t3 = time.perf_counter()
detect_chat(sys.argv[3]); t4 = time.perf_counter()
print(json.dumps({"import_chats_ms": (t1 - t0) * 1e3, "first_parse_ios_ms": (t2 - t1) * 1e3,
                  "first_parse_android_ms": (t3 - t2) * 1e3, "lorem_2000_lines_ms": (t4 - t3) * 1e3}))
"""
_DERIVE = """
import time
t0 = time.perf_counter()
from app.ingest.chats.cldr_build import derive
derive()
print((time.perf_counter() - t0) * 1e3)
"""


def _rounds(rounds: int, tree: Path, files: list[Path]) -> tuple[dict[str, float], list[dict[str, float]]]:
    runs = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", _ROUND, *map(str, files)], capture_output=True, text=True,
                             check=True, cwd=tree).stdout
        runs.append(json.loads(out))
    return {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}, runs


def measure(rounds: int, baseline: Path | None) -> dict[str, object]:
    """Medians of ``rounds`` fresh processes, then as many for a ``baseline`` tree (another checkout's app/)."""
    files = [CHATS / "languages__english_ios.txt", CHATS / "languages__russian_android.txt", CHATS / "lorem-2000.txt"]
    result: dict[str, object] = {"rounds": rounds, "files": [f.name for f in files]}
    result["median"], result["runs"] = _rounds(rounds, REPO, files)
    if baseline is not None:
        result["baseline_tree"] = str(baseline)
        result["baseline_median"], result["baseline_runs"] = _rounds(rounds, baseline, files)
    derive = subprocess.run([sys.executable, "-c", _DERIVE], capture_output=True, text=True, check=True,
                            cwd=REPO).stdout
    result["derive_from_babel_ms"] = round(float(derive), 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a tree with an older app/ (e.g. git archive REV app | tar -x -C DIR) to time too")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "whatsapp_headers.json")
    args = parser.parse_args()
    result = measure(args.rounds, args.baseline)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: value for key, value in result.items() if "median" in key or "derive" in key}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
