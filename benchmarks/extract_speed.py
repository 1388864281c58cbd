"""PDF extraction speed in pages/s on the 50-page IRS PDF: SepSum beside poppler's pdftotext, in one run.

Rounds alternate between the extractors so machine load hits them alike; the median of the rounds is
reported. SepSum is measured as the app runs it (a worker process per file) and in-process.

    .venv/bin/python -m benchmarks.extract_speed [--rounds 3] [--pdf PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PDF = REPO.parent / "shared" / "data" / "pdfs" / "pm_i1040nr_IRS_instructions.pdf"


def _sepsum(isolate: bool) -> Callable[[Path], int]:
    from app.ingest.limits import Limits
    from app.ingest.pdf import read_pdf

    def run(path: Path) -> int:
        return read_pdf(path, limits=Limits(isolate=isolate)).metadata["words"]

    return run


def _pypdf_plain(path: Path) -> int:
    from pypdf import PdfReader

    return sum(len(page.extract_text().split()) for page in PdfReader(path).pages)


def _pdftotext(path: Path) -> int:
    out = subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return len(out.split())


def measure(path: Path, rounds: int) -> dict[str, dict[str, float]]:
    from pypdf import PdfReader

    pages = len(PdfReader(path).pages)
    extractors: dict[str, Callable[[Path], int]] = {
        "sepsum (worker process, as the app runs)": _sepsum(isolate=True),
        "sepsum (in-process)": _sepsum(isolate=False),
        "pypdf plain extract_text (no clean-up)": _pypdf_plain,
    }
    if shutil.which("pdftotext"):
        extractors["pdftotext (poppler)"] = _pdftotext
    times: dict[str, list[float]] = {name: [] for name in extractors}
    words: dict[str, int] = {}
    for name, run in extractors.items():  # warm-up: imports and disk cache
        words[name] = run(path)
    for _ in range(rounds):
        for name, run in extractors.items():
            started = time.perf_counter()
            run(path)
            times[name].append(time.perf_counter() - started)
    return {
        name: {"pages": pages, "seconds": statistics.median(spent), "pages_per_s": pages / statistics.median(spent),
               "words": words[name]}
        for name, spent in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = measure(args.pdf, args.rounds)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.pdf.name}: median of {args.rounds} alternating rounds")
    print(f"{'extractor':44} {'pages':>5} {'seconds':>8} {'pages/s':>8} {'words':>7}")
    for name, row in results.items():
        print(f"{name:44} {row['pages']:>5} {row['seconds']:>8.2f} {row['pages_per_s']:>8.1f} {row['words']:>7}")


if __name__ == "__main__":
    main()
