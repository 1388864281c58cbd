"""Streaming perplexity: read a text through a cache chunk by chunk and score every next token.

Every cache reads the same tokens in the same chunks through :func:`sepllm_core.stream.stream_chunks`
(push, forward with all logits, compress); each token is scored from the logits before it. The
perplexity is over all tokens read (or those from ``score_from`` on), the same definition for every
cache, so the full cache, a recent window and SepLLM compare directly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from sepllm_core.cache import build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.positions import find_rotary_module
from sepllm_core.recall import document_ids
from sepllm_core.separators import cached_separator_table
from sepllm_core.stream import stream_chunks


def stream_perplexity(model: Any, tokenizer: Any, text: str | None, *, tokens: int, config: CacheConfig,
                      score_from: int = 0, ids: Sequence[int] | None = None,
                      separators: torch.Tensor | None = None) -> dict[str, Any]:
    """Stream the first ``tokens`` tokens of ``text`` (or ``ids``) through a cache built from ``config``.

    Parameters
    ----------
    model, tokenizer
        A Hugging Face causal LM and its tokenizer (``tokenizer`` may be None when ``ids`` and
        ``separators`` are given).
    text : str, optional
        The document (a Gutenberg header is skipped), tokenized as the app tokenizes one.
    tokens : int
        How many tokens to read.
    config : CacheConfig
        The cache; its ``chunk_size`` is the length of each forward.
    score_from : int
        Score only the tokens from this index on (0: all tokens after the first).
    ids : sequence of int, optional
        Token ids to read instead of ``text``.
    separators : torch.BoolTensor ``[vocab]``, optional
        The separator table (default: the tokenizer's default set).

    Returns
    -------
    dict
        ``ppl``, ``tokens``, ``tokens_scored``, ``kv_bytes_peak``, ``kv_entries_peak``,
        ``kv_bytes_full_equivalent``, ``kv_share_peak``, ``prefill_tokens_per_s``, ``seconds``,
        ``cache_config``. The KV peak is taken after each forward, before eviction, so it includes
        the chunk just added.
    """
    if ids is None:
        if text is None:
            raise ValueError("give text or ids")
        ids = document_ids(text, tokenizer, tokens)
    ids = ids[:tokens]
    table = separators if separators is not None else cached_separator_table(tokenizer)
    cache = build_cache(model.config, config, table, rotary=find_rotary_module(model))
    nll_sum, scored = 0.0, 0
    previous: torch.Tensor | None = None  # [vocab] log-probs predicting the first token of the next chunk
    first = max(score_from, 1)
    start = time.perf_counter()
    for chunk in stream_chunks(model, cache, ids, config.chunk_size, logits_to_keep=0):
        begin, q = chunk.start, chunk.ids.numel()
        logprobs = torch.log_softmax(chunk.logits, dim=-1)  # [q, vocab]
        # targets ids[begin + 1 .. begin + q - 1] from positions 0..q-2, plus ids[begin] from ``previous``
        targets = chunk.ids[1:].to(logprobs.device)
        token_nll = -logprobs[:-1].gather(1, targets[:, None])[:, 0]  # [q - 1]
        mask = torch.arange(begin + 1, begin + q) >= first
        nll_sum += float(token_nll[mask.to(token_nll.device)].sum())
        scored += int(mask.sum())
        if previous is not None and begin >= first:
            nll_sum += float(-previous[int(chunk.ids[0])])
            scored += 1
        previous = logprobs[-1]
    seconds = time.perf_counter() - start
    stats = cache.stats()  # peaks over the whole read
    return {
        "ppl": math.exp(nll_sum / scored) if scored else float("nan"),
        "tokens": len(ids),
        "tokens_scored": scored,
        "kv_bytes_peak": stats.kv_bytes_peak,
        "kv_entries_peak": stats.kv_entries_peak,
        "kv_bytes_full_equivalent": stats.kv_bytes_full_equivalent,
        "kv_share_peak": stats.kv_bytes_peak / stats.kv_bytes_full_equivalent
        if stats.kv_bytes_full_equivalent else None,
        "prefill_tokens_per_s": len(ids) / seconds,
        "seconds": round(seconds, 2),
        "cache_config": config.to_dict(),
    }
