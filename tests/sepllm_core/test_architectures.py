"""The cache on tiny random-weight Llama, Qwen2, Qwen3, Mistral, Gemma2, Gemma3 and Phi-3 models."""

from __future__ import annotations

import pytest
import torch

from sepllm_core.cache import SlidingLayer, build_cache
from sepllm_core.config import CacheConfig
from tests.sepllm_core.tiny_models import (
    ARCHITECTURES,
    SLIDING,
    KeptRecorder,
    masked_reference,
    random_ids,
    run_chunks,
    separator_table_for_tiny,
    tiny_model,
)

ALL = list(ARCHITECTURES)
FULL_ATTENTION_ONLY = [a for a in ALL if a not in SLIDING]


@pytest.fixture(scope="module")
def table():
    return separator_table_for_tiny()


@pytest.mark.parametrize("arch", ALL)
def test_large_budget_equals_plain_forward(arch, table):
    model = tiny_model(arch)
    ids = random_ids(40, seed=11)
    cfg = CacheConfig(initial=4, separators=8, local=8, max_entries=64, chunk_size=12)
    logits = run_chunks(model, build_cache(model.config, cfg, table), ids, chunk=12)
    with torch.inference_mode():
        reference = model(ids).logits.float()
    torch.testing.assert_close(logits, reference, atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", FULL_ATTENTION_ONLY)
def test_eviction_equals_masked_reference(arch, table):
    model = tiny_model(arch)
    ids = random_ids(64, seed=12)
    cfg = CacheConfig(initial=2, separators=5, local=5, max_entries=20, chunk_size=8, positions="original")
    recorder = KeptRecorder()
    logits = run_chunks(model, build_cache(model.config, cfg, table), ids, 8, before_chunk=recorder)
    torch.testing.assert_close(logits, masked_reference(model, ids, 8, recorder.kept), atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ALL)
def test_shifted_equals_fresh_forward_one_layer(arch, table):
    overrides = {"layer_types": ["full_attention"]} if arch in SLIDING else {}
    model = tiny_model(arch, layers=1, seed=13, **overrides)
    ids = random_ids(72, seed=13)
    cfg = CacheConfig(initial=3, separators=5, local=6, max_entries=24, chunk_size=8, positions="shifted")
    cache = build_cache(model.config, cfg, table)
    run_chunks(model, cache, ids[:, :64], chunk=8)
    assert cache.stats().evicted > 0
    kept = cache.kept_token_ids()
    logits = run_chunks(model, cache, ids[:, 64:], chunk=8)
    with torch.inference_mode():
        reference = model(torch.cat([kept[None], ids[:, 64:]], dim=1)).logits.float()[:, -8:]
    torch.testing.assert_close(logits, reference, atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", SLIDING)
@pytest.mark.parametrize("positions", ["original", "shifted"])
def test_sliding_layers_keep_their_own_window(arch, positions, table):
    model = tiny_model(arch, layers=2)
    cfg = CacheConfig(initial=2, separators=4, local=4, max_entries=16, chunk_size=6, positions=positions)
    cache = build_cache(model.config, cfg, table)
    logits = run_chunks(model, cache, random_ids(60, seed=14), chunk=6)
    assert torch.isfinite(logits).all()
    sliding = [layer for layer in cache.layers if isinstance(layer, SlidingLayer)]
    assert sliding and all(layer.keys.shape[-2] == 7 for layer in sliding)  # window 8 keeps 7 past entries
    assert cache.stats().kv_entries == 16
    # the first full-attention layer sizes the full mask, the first sliding layer the sliding mask
    assert cache.get_mask_sizes(1, 1) == (17, 0) and cache.get_mask_sizes(1, 0)[0] == 8
