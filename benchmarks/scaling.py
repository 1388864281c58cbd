"""KV peak, process peak RSS and tokens/s against context length, through the product's Session.

Each (cache, length) point runs in its own process, so its peak RSS is its own: load the default
model, feed the first N tokens of Moby Dick in chunks (``Session.feed``), then decode greedily
(``Session.generate``). Targets (issue 3): KV peak at 256k <= 2 % of the full-cache equivalent,
peak RSS within 10 % between 16k and 256k, prefill tok/s at 64k >= 2x the full cache's at 16k,
decode tok/s within 15 % from 4k to 256k.

    .venv/bin/python -m benchmarks.scaling --points sepllm:4096,sepllm:16384,full:16384
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import common

DEFAULT_POINTS = ("sepllm:4096,sepllm:16384,sepllm:65536,sepllm:262144,full:4096,full:16384")


def run_point(policy: str, tokens: int, decode_tokens: int, book: str = "moby",
              decode_weights: str = "auto") -> dict[str, Any]:
    """Feed ``tokens`` tokens of ``book`` through a Session with the product cache, then decode
    (on ``decode_weights``, as ``app.engine.models.load_model`` takes it; auto as the app)."""
    import torch

    from sepllm_core.config import CacheConfig
    from sepllm_core.generate import SamplingConfig, Session

    model, tokenizer = common.load_default_model(decode_weights)
    ids = common.book_ids(tokenizer, book, tokens)
    rss_after_load = common.peak_rss_bytes()
    config = CacheConfig.balanced() if policy == "sepllm" else (
        CacheConfig.window() if policy == "window" else CacheConfig.full().with_(chunk_size=512))
    session = Session(model, tokenizer, config)
    for _ in session.feed(torch.tensor(ids)):
        pass
    stopped_by = ""
    for event in session.generate(decode_tokens, sampling=SamplingConfig(), detect_repetition=False):
        stopped_by = getattr(event, "stopped_by", stopped_by)
    stats = session.stats()
    return {
        "bench": "scaling", "book": book, "cache": policy, "tokens": tokens,
        "cache_config": config.to_dict(),
        "kv_bytes_peak": stats["kv_bytes_peak"], "kv_entries_peak": stats["kv_entries_peak"],
        "kv_bytes_full_equivalent": stats["kv_bytes_full_equivalent"],
        "kv_share_peak": stats["kv_bytes_peak"] / stats["kv_bytes_full_equivalent"],
        "rss_peak_bytes": common.peak_rss_bytes(), "rss_after_model_load_bytes": rss_after_load,
        "prefill_tokens_per_s": stats["prefill_tokens_per_s"],
        "decode_tokens_per_s": stats["decode_tokens_per_s"], "decode_tokens": stats["output_tokens"],
        "decode_stopped_by": stopped_by, "seconds": round(stats["seconds"], 2),
        "decode_weights": "int4" if getattr(model, "_sepllm_int4", False) else "bf16", **common.stamp(),
    }


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's ratios from the points that were measured (None where a point is missing)."""
    def get(policy: str, tokens: int) -> dict[str, Any] | None:
        return next((r for r in records if r["cache"] == policy and r["tokens"] == tokens), None)

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    s16, s64, s256, f16 = get("sepllm", 16384), get("sepllm", 65536), get("sepllm", 262144), get("full", 16384)
    longest = max((r for r in records if r["cache"] == "sepllm"), key=lambda r: r["tokens"], default=None)
    shortest = min((r for r in records if r["cache"] == "sepllm"), key=lambda r: r["tokens"], default=None)
    return {
        "kv_share_peak_256k": s256["kv_share_peak"] if s256 else None,
        "rss_peak_256k_over_16k": ratio(s256 and s256["rss_peak_bytes"], s16 and s16["rss_peak_bytes"]),
        "prefill_64k_sepllm_over_16k_full": ratio(s64 and s64["prefill_tokens_per_s"],
                                                  f16 and f16["prefill_tokens_per_s"]),
        "decode_longest_over_shortest": ratio(longest and longest["decode_tokens_per_s"],
                                              shortest and shortest["decode_tokens_per_s"]),
        "decode_span_tokens": [shortest["tokens"], longest["tokens"]] if shortest and longest else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default=DEFAULT_POINTS, help="comma-separated cache:tokens")
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "scaling.jsonl")
    parser.add_argument("--decode-weights", default="auto", choices=("auto", "bf16", "int4"),
                        help="the weights decode reads (auto: as the app; int4 for the default model)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        policy, tokens = args.child.split(":")
        print(json.dumps(run_point(policy, int(tokens), args.decode_tokens, decode_weights=args.decode_weights)))
        return 0
    records = []
    for point in args.points.split(","):
        result = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--child", point,
                                 "--decode-tokens", str(args.decode_tokens), "--decode-weights", args.decode_weights],
                                capture_output=True, text=True, cwd=common.REPO)
        if result.returncode != 0:
            print(f"scaling {point} failed: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        record = json.loads(result.stdout.strip().splitlines()[-1])
        records.append(record)
        common.emit(record, args.out)
    common.emit({"bench": "scaling_summary", **summarize(records), **common.stamp()}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
