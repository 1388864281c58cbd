"""Streaming perplexity over the shared books with the full cache, a recent window and SepLLM.

Each measurement is ``sepllm_core.perplexity.stream_perplexity`` (the function behind
``sepsum eval perplexity``) plus the process's peak RSS so far.

    .venv/bin/python -m benchmarks.perplexity --lengths 8192,65536 --caches full,window,sepllm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import common


def main(argv: list[str] | None = None) -> int:
    from sepllm_core.perplexity import stream_perplexity
    from sepllm_core.recall import cache_config_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", default="moby,cats")
    parser.add_argument("--lengths", default="8192,65536", help="comma-separated token counts")
    parser.add_argument("--caches", default="full,window,sepllm")
    parser.add_argument("--budgets", default="1024", help="entries kept by window and sepllm, comma-separated")
    parser.add_argument("--full-max", type=int, default=8192, help="longest text the full cache reads")
    parser.add_argument("--positions", default="auto")
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--kv-quant", default="none", choices=["none", "int8"])
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "perplexity.jsonl")
    args = parser.parse_args(argv)
    model, tokenizer = common.load_default_model()
    for book in args.books.split(","):
        for length in (int(n) for n in args.lengths.split(",")):
            ids = common.book_ids(tokenizer, book, length)
            for policy in args.caches.split(","):
                if policy == "full" and length > args.full_max:
                    continue
                for budget in [0] if policy == "full" else [int(b) for b in args.budgets.split(",")]:
                    config = cache_config_for(policy, budget, chunk_size=args.chunk_size,
                                              positions=args.positions).with_(kv_quant=args.kv_quant)
                    result = stream_perplexity(model, tokenizer, None, tokens=length, config=config, ids=ids)
                    result["rss_peak_bytes"] = common.peak_rss_bytes()  # of the whole process so far
                    common.emit({"bench": "perplexity", "book": book, "cache": policy, "budget": budget or None,
                                 **result, **common.stamp()}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
