"""The streaming primitive and streaming perplexity against plain forwards of tiny models."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from transformers import DynamicCache

from sepllm_core.cache import build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.perplexity import stream_perplexity
from sepllm_core.stream import forward_chunk, stream_chunks
from tests.sepllm_core.tiny_models import random_ids, separator_table_for_tiny, tiny_model


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama", layers=2)


def test_chunks_cover_the_ids_and_match_one_forward(llama):
    ids = random_ids(50, seed=3)
    cache = build_cache(llama.config, CacheConfig.full(), separator_table_for_tiny())
    chunks = list(stream_chunks(llama, cache, ids, 16, logits_to_keep=0))
    assert [(c.start, c.end) for c in chunks] == [(0, 16), (16, 32), (32, 48), (48, 50)]
    assert torch.equal(torch.cat([c.ids for c in chunks]), ids[0])
    with torch.inference_mode():
        reference = llama(ids).logits[0].float()  # [n, vocab]
    torch.testing.assert_close(torch.cat([c.logits for c in chunks]), reference, atol=2e-5, rtol=1e-4)
    assert cache.stats().tokens_seen == 50


def test_last_logits_and_a_plain_transformers_cache(llama):
    """``logits_to_keep=1`` gives the last row; a DynamicCache is read with absolute positions."""
    ids = random_ids(30, seed=4)
    dynamic = DynamicCache(config=llama.config)
    last = [forward_chunk(llama, dynamic, ids[0, i:i + 10]) for i in range(0, 30, 10)]
    assert all(row.shape == (1, llama.config.vocab_size) for row in last)
    with torch.inference_mode():
        reference = llama(ids).logits[0].float()
    torch.testing.assert_close(torch.cat(last), reference[[9, 19, 29]], atol=2e-5, rtol=1e-4)
    assert dynamic.get_seq_length() == 30


def test_cancel_stops_before_the_next_chunk(llama):
    cancel = threading.Event()
    cache = build_cache(llama.config, CacheConfig.full(), separator_table_for_tiny())
    seen = []
    for chunk in stream_chunks(llama, cache, random_ids(40, seed=5), 8, cancel=cancel):
        seen.append(chunk.end)
        if chunk.end == 16:
            cancel.set()
    assert seen == [8, 16]
    assert cache.stats().tokens_seen == 16 and cache.pending == 0


def test_chunk_size_must_be_positive(llama):
    cache = build_cache(llama.config, CacheConfig.full(), separator_table_for_tiny())
    with pytest.raises(ValueError, match="chunk_size"):
        list(stream_chunks(llama, cache, random_ids(4), 0))


@pytest.mark.parametrize("score_from", [0, 21])
def test_full_cache_perplexity_equals_one_forward(llama, score_from):
    """Chunked streaming scores every token from the logits before it, as one forward does."""
    ids = random_ids(60, seed=6)
    config = CacheConfig.full().with_(chunk_size=16)
    result = stream_perplexity(llama, None, None, tokens=60, config=config, ids=ids[0].tolist(),
                               separators=separator_table_for_tiny(), score_from=score_from)
    with torch.inference_mode():
        logprobs = torch.log_softmax(llama(ids).logits[0].float(), dim=-1)  # [n, vocab]
    first = max(score_from, 1)
    nll = -logprobs[first - 1:-1].gather(1, ids[0, first:, None])[:, 0]
    assert result["tokens_scored"] == 60 - first
    assert result["ppl"] == pytest.approx(math.exp(float(nll.mean())), rel=1e-5)
    assert result["tokens"] == 60 and result["cache_config"]["policy"] == "full"


def test_bounded_cache_perplexity_reports_the_kv_peak(llama):
    """A window cache holds at most its budget plus one chunk; the result says so."""
    config = CacheConfig.window(24).with_(chunk_size=8)
    result = stream_perplexity(llama, None, None, tokens=80, config=config, ids=random_ids(80, seed=7)[0].tolist(),
                               separators=separator_table_for_tiny())
    assert result["kv_entries_peak"] == 24 + 8
    assert result["kv_share_peak"] == pytest.approx(32 / 80)
    assert math.isfinite(result["ppl"])
