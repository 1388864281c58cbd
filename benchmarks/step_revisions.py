"""The written-out decode step of several git revisions, side by side on one session: decode tok/s.

Each revision's ``sepllm_core/decode_step.py`` and ``sepllm_core/fast_decode.py`` are read with
``git show`` and loaded as modules next to the working tree's; one Session (balanced cache, the
packed default model) reads the first N tokens of Moby Dick once, then decode rounds alternate
between the revisions' steps, so all of them decode from the same cache (which grows by the tokens
decoded). The cache and the rest of the Session are the working tree's, for every revision.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.step_revisions --revisions c5c94a9 9f9507b \\
        --contexts 512 2048 --rounds 5 --out docs/benchmarks/step_revisions_s4.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def _module_at(revision: str, path: str, folder: Path) -> ModuleType:
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    name = f"{Path(path).stem}_{revision.replace('~', '_').replace('^', '_')}"
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def revision_step(model: Any, revision: str, folder: Path) -> Any:
    """A FastDecode whose written-out step is ``revision``'s (with that revision's attention)."""
    from sepllm_core.fast_decode import FastDecode

    fast_decode = _module_at(revision, "sepllm_core/fast_decode.py", folder)
    step = _module_at(revision, "sepllm_core/decode_step.py", folder)
    step.decode_attention = fast_decode.decode_attention  # type: ignore[attr-defined]
    switch = FastDecode(model)
    switch.decode_step = step.DecodeStep(model)  # type: ignore[attr-defined]
    return switch


def measure(model: Any, tokenizer: Any, ids: list[int], steps: dict[str, Any], tokens: int,
            rounds: int) -> dict[str, Any]:
    """Median decode tok/s per revision, rounds alternating on one session."""
    from sepllm_core.config import CacheConfig
    from sepllm_core.generate import Session

    session = Session(model, tokenizer, CacheConfig.balanced(), decode_threads=torch.get_num_threads())
    session.eos_ids = set()
    for _ in session.feed(torch.tensor(ids)):
        pass

    def decode_round(n: int) -> float:
        start = time.perf_counter()
        for _ in session.generate(n, detect_repetition=False):
            pass
        return n / (time.perf_counter() - start)

    for switch in steps.values():  # warm-up: oneDNN's first steps are slow
        session.fast = switch
        decode_round(4)
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, switch in steps.items():
            session.fast = switch
            runs[name].append(decode_round(tokens))
    return {"decode_tokens_per_s": {name: statistics.median(r) for name, r in runs.items()}, "runs": runs,
            "kv_entries_after": session.cache.length}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", nargs="+", required=True, help="git revisions to set against the working tree")
    parser.add_argument("--contexts", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--tokens", type=int, default=32, help="tokens per decode round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from app.engine.models import load_model
    from benchmarks import common
    from sepllm_core.fast_decode import FastDecode

    torch.set_num_threads(args.threads)
    loaded = load_model(None, device="cpu", dtype="bf16", pack=True, decode_weights="bf16")
    ids_all = common.book_ids(loaded.tokenizer, "moby", max(args.contexts))
    with tempfile.TemporaryDirectory() as tmp:
        steps = {revision: revision_step(loaded.model, revision, Path(tmp)) for revision in args.revisions}
        steps["working tree"] = FastDecode(loaded.model)
        for context in args.contexts:
            row = {"bench": "step_revisions", "context": context, "threads": args.threads,
                   **measure(loaded.model, loaded.tokenizer, ids_all[:context], steps, args.tokens, args.rounds),
                   **common.stamp()}
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
            rates = row["decode_tokens_per_s"]
            base = rates[args.revisions[0]]
            print(f"{context:>6} " + "  ".join(f"{name}: {rate:.1f} ({rate / base:.2f}x)" for name, rate in rates.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
