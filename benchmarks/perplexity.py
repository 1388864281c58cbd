"""Streaming perplexity over the shared books with the full cache, a recent window and SepLLM.

Every cache reads the same tokens in the same chunks through the same loop: push the chunk,
forward with all logits, score each next token, compress. The perplexity is over all tokens read
(or those from ``score_from`` on), the same definition for every cache.

    .venv/bin/python -m benchmarks.perplexity --lengths 8192,65536 --caches full,window,sepllm
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import common


def stream_perplexity(model: Any, tokenizer: Any, text: str | None, *, tokens: int, config: Any,
                      score_from: int = 0, ids: list[int] | None = None,
                      separators: torch.Tensor | None = None) -> dict[str, Any]:
    """Stream the first ``tokens`` tokens of ``text`` (or ``ids``) through a cache built from ``config``
    (``separators``: its separator table; default the tokenizer's default set).

    Returns ``{"ppl", "tokens", "tokens_scored", "kv_bytes_peak", "kv_entries_peak",
    "kv_bytes_full_equivalent", "prefill_tokens_per_s", "seconds", "cache_config"}``. The KV peak is
    taken after each forward, before eviction, so it includes the chunk just added.
    """
    from sepllm_core.recall import document_ids

    if ids is None:
        if text is None:
            raise ValueError("give text or ids")
        ids = document_ids(text, tokenizer, tokens)
    ids = ids[:tokens]
    cache = common.build(model, tokenizer, config, separators)
    chunk = config.chunk_size
    nll_sum, scored = 0.0, 0
    previous: torch.Tensor | None = None  # [vocab] log-probs predicting the first token of the next chunk
    kv_peak = entries_peak = full_equivalent = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for begin in range(0, len(ids), chunk):
            piece = torch.tensor([ids[begin : begin + chunk]], dtype=torch.long, device=model.device)  # [1, q]
            q = piece.shape[1]
            cache.push_tokens(piece)
            position_ids = cache.next_position_ids(q)
            logits = model(input_ids=piece, position_ids=position_ids, cache=cache, use_cache=True,
                           logits_to_keep=0).logits[0]  # [q, vocab]
            stats = cache.compress()  # peaks are taken after the forward, before eviction
            kv_peak, entries_peak = stats.kv_bytes_peak, stats.kv_entries_peak
            full_equivalent = stats.kv_bytes_full_equivalent
            logprobs = torch.log_softmax(logits.float(), dim=-1)  # [q, vocab]
            # targets ids[begin + 1 .. begin + q - 1] from positions 0..q-2, plus ids[begin] from ``previous``
            targets = piece[0, 1:]
            token_nll = -logprobs[:-1].gather(1, targets[:, None])[:, 0]  # [q - 1]
            index = torch.arange(begin + 1, begin + q)
            mask = index >= max(score_from, 1)
            nll_sum += float(token_nll[mask].sum())
            scored += int(mask.sum())
            if previous is not None and begin >= max(score_from, 1):
                nll_sum += float(-previous[ids[begin]])
                scored += 1
            previous = logprobs[-1]
    seconds = time.perf_counter() - start
    return {
        "ppl": math.exp(nll_sum / scored) if scored else float("nan"),
        "tokens": len(ids),
        "tokens_scored": scored,
        "kv_bytes_peak": kv_peak,
        "kv_entries_peak": entries_peak,
        "kv_bytes_full_equivalent": full_equivalent,
        "kv_share_peak": kv_peak / full_equivalent if full_equivalent else None,
        "prefill_tokens_per_s": len(ids) / seconds,
        "seconds": round(seconds, 2),
        "rss_peak_bytes": common.peak_rss_bytes(),  # of the whole process so far
        "cache_config": config.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
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
                    common.emit({"bench": "perplexity", "book": book, "cache": policy, "budget": budget or None,
                                 **result, **common.stamp()}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
