"""Decode tokens/s of the Session, eager attention vs the fast decode path, side by side in one process.

For each context length and cache (balanced SepLLM preset, full cache) one Session reads the first
N tokens of Moby Dick once; then decode rounds alternate between the modes (and thread counts) on
that same session, so every mode sees the same context (it grows by the few tokens decoded). The
llama.cpp figures are the ones measured on this CPU (../shared/STACK.md, 2 threads), for the ratio.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.decode_speed --contexts 512 2048 8192 --threads 1 --tokens 32 --rounds 3

Run it once more with ``OMP_WAIT_POLICY=PASSIVE`` in the environment (it must be set before torch
starts): on a loaded 2-core machine, 2 spinning OpenMP threads made a bf16 decode step ~60x slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from benchmarks import STARTUP_OMP_WAIT_POLICY

LLAMA_CPP_DECODE = {512: 118.8, 2048: 89.7, 8192: 45.3}
"""llama.cpp decode tok/s on this CPU, 2 threads, same GGUF (8192: measured at 8000 tokens)."""


def decode_round(session: Any, tokens: int) -> float:
    """Greedy-decode ``tokens`` tokens (no eos, no repetition stop); tokens/s over the whole loop."""
    from sepllm_core.generate import SamplingConfig

    start = time.perf_counter()
    for _ in session.generate(tokens, sampling=SamplingConfig(), detect_repetition=False):
        pass
    return tokens / (time.perf_counter() - start)


def measure(models: dict[str, Any], tokenizer: Any, ids: list[int], config: Any, modes: list[str],
            threads: list[int], tokens: int, rounds: int) -> dict[str, Any]:
    """Median decode tok/s per (mode, threads) after feeding ``ids``; prefill tok/s of the feed.

    ``models`` holds the unpacked model (``plain``) and the same weights packed for oneDNN
    (``packed``, bit-equal outputs), so all modes decode from one cache state: ``eager`` is
    transformers' own attention and layers, ``fast`` the fast attention and head, ``packed``
    that plus the packed (and fused) linear layers, ``step`` that through the written-out
    decode step (the app on bf16 decode weights), ``int4`` the written-out step on the int4
    copies (``int4`` model: the app's default for the default model; not bit-equal).
    """
    from sepllm_core.fast_decode import FastDecode
    from sepllm_core.generate import Session

    model = models["plain"]
    torch.set_num_threads(max(threads))
    prefill = {}
    for name in ("packed", "plain"):  # the plain model's session is the one decoded from
        session = Session(models[name], tokenizer, config)
        session.eos_ids = set()
        start = time.perf_counter()
        for _ in session.feed(torch.tensor(ids)):
            pass
        prefill[name] = len(ids) / (time.perf_counter() - start)
    module_path = FastDecode(models["packed"])
    module_path.decode_step = None  # the packed model through transformers' own modules
    switches = {"eager": FastDecode(model, enabled=False), "fast": FastDecode(model),
                "packed": module_path, "step": FastDecode(models["packed"])}
    if "int4" in models:
        switches["int4"] = FastDecode(models["int4"])
    for mode in modes:  # warm-up: oneDNN's first bf16 steps are slow
        session.fast = switches[mode]
        decode_round(session, 4)
    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            session.decode_threads = n_threads  # the Session would otherwise time its own counts
            for mode in modes:
                session.fast = switches[mode]
                rates.setdefault(f"{mode}/{n_threads}t", []).append(decode_round(session, tokens))
    return {"prefill_tokens_per_s": prefill["plain"], "prefill_packed_tokens_per_s": prefill["packed"],
            "kv_entries": session.cache.length,
            "decode_tokens_per_s": {key: statistics.median(v) for key, v in rates.items()},
            "runs": rates}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per (context, cache) and a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--caches", nargs="+", default=["balanced", "full"],
                        choices=["balanced", "balanced-int8", "full"])
    parser.add_argument("--modes", nargs="+", default=["eager", "fast", "packed", "step", "int4"],
                        choices=["eager", "fast", "packed", "step", "int4"])
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--tokens", type=int, default=32, help="tokens per decode round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per mode (median)")
    parser.add_argument("--book", default="moby", choices=["moby", "cats"])
    args = parser.parse_args(argv)

    from app.engine.models import load_model
    from benchmarks import common
    from sepllm_core.config import CacheConfig

    plain = load_model(None, device="cpu", dtype="bf16")
    packed = load_model(None, device="cpu", dtype="bf16", pack=True, decode_weights="bf16")
    models, tokenizer = {"plain": plain.model, "packed": packed.model}, plain.tokenizer
    if "int4" in args.modes:
        models["int4"] = load_model(None, device="cpu", dtype="bf16", pack=True, decode_weights="int4").model
    ids_all = common.book_ids(tokenizer, args.book, max(args.contexts))
    configs = {"balanced": CacheConfig.balanced(), "balanced-int8": CacheConfig.balanced().with_(kv_quant="int8"),
               "full": CacheConfig.full().with_(chunk_size=512)}
    rows = []
    for context in args.contexts:
        for cache in args.caches:
            result = measure(models, tokenizer, ids_all[:context], configs[cache], args.modes,
                             args.threads, args.tokens, args.rounds)
            row = {"context": context, "cache": cache, "threads": args.threads,
                   "omp_wait_policy": STARTUP_OMP_WAIT_POLICY, **result,
                   "llama_cpp_decode_2t": LLAMA_CPP_DECODE.get(context)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'context':>7} {'cache':>8} {'prefill':>8} {'packed':>8} " + " ".join(
        f"{k:>10}" for k in rows[0]["decode_tokens_per_s"]) + "  llama.cpp/2  best/(llama.cpp/2)")
    for row in rows:
        rates = row["decode_tokens_per_s"]
        half = (row["llama_cpp_decode_2t"] or 0) / 2
        best = max(rates.values())
        ratio = f"{best / half:.2f}" if half else "-"
        print(f"{row['context']:>7} {row['cache']:>8} {row['prefill_tokens_per_s']:>8.0f} "
              f"{row['prefill_packed_tokens_per_s']:>8.0f} "
              + " ".join(f"{v:>10.1f}" for v in rates.values()) + f"  {half:>11.1f}  {ratio:>17}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
