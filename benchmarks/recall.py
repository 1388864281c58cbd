"""Planted-fact recall for every cache policy on the shared books (see sepllm_core.recall).

    .venv/bin/python -m benchmarks.recall --tokens 6000 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks import common

DEFAULT_CACHES = "none,full,window:512,window:1024,sepllm:512,sepllm:1024,control:512"


def main(argv: list[str] | None = None) -> int:
    from sepllm_core.recall import cache_config_for, cache_factory_for, measure_recall

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", default="moby")
    parser.add_argument("--tokens", type=int, default=6000)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--caches", default=DEFAULT_CACHES, help="policy[:budget], comma-separated")
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "recall.jsonl")
    args = parser.parse_args(argv)
    model, tokenizer = common.load_default_model()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for book in args.books.split(","):
        text = common.BOOKS[book].read_text(encoding="utf-8")
        for spec in args.caches.split(","):
            policy, _, budget = spec.partition(":")
            config = cache_config_for(policy, int(budget or 1024), chunk_size=args.chunk_size)
            report = measure_recall(model, tokenizer, text, tokens=args.tokens,
                                    cache_factory=cache_factory_for(model, tokenizer, config),
                                    cache_name=spec, facts=args.facts, seeds=seeds,
                                    chunk_size=args.chunk_size, protect_facts=policy == "control")
            row = {"bench": "recall", "book": book, **report.to_dict(),
                   "cache_config": config.to_dict() if config else None, **common.stamp()}
            rows.append(row)
            common.emit(row, args.out)
    print(table(rows))
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: first-half and second-half mean rank and top-1 count per book and cache."""
    lines = ["| book | cache | KV entries | first half: mean rank / top-1 | second half: mean rank / top-1 |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['book']} | {r['cache']} | {r['kv_entries']} | {r['mean_rank_early']:.2f} / "
                     f"{r['recall_early_count']} | {r['mean_rank_late']:.2f} / {r['recall_late_count']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
