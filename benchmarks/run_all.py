"""``make bench``: every benchmark once, in order; JSON lines under .cache/bench, tables on stdout.

Long on 2 CPU cores (about an hour with the 256k-token points); pass ``--quick`` for a smoke run.
llama.cpp is compared only when a Python with llama-cpp-python exists (``--llama-python``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import common, llamacpp_compare, perplexity, plots, recall, scaling

QUICK = {
    "perplexity": ["--books", "moby", "--lengths", "2048", "--budgets", "512"],
    "scaling": ["--points", "sepllm:2048,full:2048", "--decode-tokens", "16"],
    "recall": ["--tokens", "2000", "--facts", "4", "--seeds", "0", "--caches", "none,full,window:256,control:256"],
    "llamacpp": ["--contexts", "512", "--repeats", "1", "--decode-tokens", "16"],
}
FULL = {
    "perplexity": ["--books", "moby,cats", "--lengths", "8192,65536", "--budgets", "768,1024"],
    "scaling": [],
    "recall": ["--books", "moby,cats", "--tokens", "6000", "--seeds", "0,1,2"],
    "llamacpp": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    parser.add_argument("--only", default="perplexity,scaling,recall,llamacpp")
    parser.add_argument("--llama-python", default=llamacpp_compare.LLAMA_PYTHON,
                        help="a Python with llama-cpp-python (default: $LLAMA_PYTHON or .cache/llamacpp-venv)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    runners = {"perplexity": perplexity.main, "scaling": scaling.main, "recall": recall.main,
               "llamacpp": llamacpp_compare.main}
    for name in args.only.split(","):
        extra = list(plan[name])
        if name == "llamacpp":
            if not Path(args.llama_python).exists():
                print(f"llama.cpp comparison skipped: {args.llama_python} not found "
                      "(see benchmarks/llamacpp_compare.py: llama-cpp-python==0.3.36 in a separate venv)",
                      file=sys.stderr)
                continue
            extra += ["--llama-python", args.llama_python]
        print(f"== {name} {' '.join(extra)}", flush=True)
        runners[name](extra)
    plots.main(["--out", str(common.RESULTS_DIR)])  # charts beside the results; docs/ keeps only what it cites
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
