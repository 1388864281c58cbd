"""SepCache correctness: equality with the full cache, the exact kept set, masked and shifted references."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import DynamicCache, GPT2Config, LlamaConfig

from sepllm_core.cache import DECODE_RENUMBER_SLACK, SepCache, build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.separators import separator_table
from sepllm_core.stream import stream_chunks
from tests.sepllm_core.test_policy import reference_keep
from tests.sepllm_core.tiny_models import (
    KeptRecorder,
    masked_reference,
    random_ids,
    run_chunks,
    separator_table_for_tiny,
    tiny_model,
)


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama", layers=2)


@pytest.fixture(scope="module")
def table():
    return separator_table_for_tiny()


@pytest.mark.parametrize("policy", ["sepllm", "window", "full"])
@pytest.mark.parametrize("positions", ["original", "shifted", "auto"])
def test_budget_above_length_equals_full_forward(llama, table, policy, positions):
    ids = random_ids(90, seed=1)
    cfg = CacheConfig(policy=policy, initial=4, separators=8, local=8, max_entries=128, chunk_size=16,
                      positions=positions)
    logits = run_chunks(llama, build_cache(llama.config, cfg, table), ids, chunk=16)
    with torch.inference_mode():
        reference = llama(ids).logits.float()
    torch.testing.assert_close(logits, reference, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg", [
    CacheConfig(initial=4, separators=6, local=5, max_entries=24, chunk_size=7, positions="original"),
    CacheConfig(initial=3, separators=10, local=4, max_entries=30, chunk_size=5, positions="shifted", fill_recent=False),
    CacheConfig.window(20).with_(chunk_size=6, positions="original"),
    CacheConfig(initial=4, separators=6, local=5, max_entries=40, chunk_size=7, fill_recent=False),
], ids=["sepllm", "sepllm-no-fill-shifted", "window", "sepllm-no-fill"])
def test_eviction_keeps_exactly_the_policy_set(llama, table, cfg):
    ids = random_ids(120, seed=2)
    cache = build_cache(llama.config, cfg, table)
    kept: list[int] = []  # the reference, replayed on token ids alone
    stream = ids[0].tolist()
    for chunk in stream_chunks(llama, cache, ids, cfg.chunk_size):
        kept += list(range(chunk.start, chunk.end))
        seps = [bool(table[stream[p]]) for p in kept]
        keep = reference_keep(kept, seps, [False] * len(kept), cfg)
        kept = sorted(kept[i] for i in keep)
        assert cache.kept_positions().tolist() == kept
        assert cache.kept_token_ids().tolist() == [stream[p] for p in kept]
        if not cfg.fill_recent:
            assert len(kept) <= cfg.initial + cfg.separators + cfg.local < cfg.max_entries
    assert cache.stats().evicted == len(stream) - len(kept) > 0


@pytest.mark.parametrize("policy,fill", [("sepllm", True), ("window", True), ("sepllm", False)])
def test_original_positions_equal_masked_reference(llama, table, policy, fill):
    ids = random_ids(100, seed=3)
    cfg = CacheConfig(policy=policy, initial=4, separators=6, local=6, max_entries=30, chunk_size=9,
                      positions="original", fill_recent=fill)
    recorder = KeptRecorder()
    logits = run_chunks(llama, build_cache(llama.config, cfg, table), ids, chunk=9, before_chunk=recorder)
    reference = masked_reference(llama, ids, 9, recorder.kept)
    torch.testing.assert_close(logits, reference, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("fill_recent", [True, False])
def test_shifted_equals_fresh_forward_over_kept_tokens(table, fill_recent):
    """With one layer, cached keys depend only on token and position: shifting must reproduce them."""
    model = tiny_model("llama", layers=1, seed=4)
    ids = random_ids(180, seed=4)
    cfg = CacheConfig(initial=4, separators=6, local=6, max_entries=32, chunk_size=8, positions="shifted",
                      fill_recent=fill_recent)
    cache = build_cache(model.config, cfg, table)
    run_chunks(model, cache, ids[:, :80], chunk=8)
    run_chunks(model, cache, ids[:, 80:170], chunk=1)  # decode steps renumber in batches
    run_chunks(model, cache, ids[:, 170:], chunk=10)
    kept = cache.kept_token_ids()
    assert cache.kept_rotary_positions().tolist() == list(range(kept.numel()))
    tail = random_ids(10, seed=5)
    logits = run_chunks(model, cache, tail, chunk=tail.shape[1])
    fresh = torch.cat([kept[None], tail], dim=1)
    with torch.inference_mode():
        reference = model(fresh).logits.float()[:, -tail.shape[1]:]
    torch.testing.assert_close(logits, reference, atol=5e-5, rtol=1e-4)


def test_auto_positions_stay_inside_trained_context(table):
    model = tiny_model("llama", layers=1, seed=5, max_position_embeddings=64)
    cfg = CacheConfig(initial=4, separators=4, local=8, max_entries=24, chunk_size=8, positions="auto")
    cache = build_cache(model.config, cfg, table)
    highest = []
    ids = random_ids(200, seed=5)
    for _ in stream_chunks(model, cache, ids, 8):
        highest.append(cache.next_position - 1)  # the last position id the chunk was read at
    assert max(highest) < 64
    assert highest[:7] == [7 + 8 * k for k in range(7)]  # original positions until the limit
    rotary = cache.kept_rotary_positions()
    assert bool((rotary[1:] > rotary[:-1]).all())


def test_protected_prefix_is_never_evicted(llama, table):
    cfg = CacheConfig(initial=2, separators=4, local=4, max_entries=20, chunk_size=8, positions="original")
    cache = build_cache(llama.config, cfg, table)
    header = random_ids(12, seed=6)
    run_chunks(llama, cache, header, chunk=8, protected=True)
    run_chunks(llama, cache, random_ids(80, seed=7), chunk=8)
    kept = cache.kept_positions().tolist()
    assert kept[:12] == list(range(12))
    assert len(kept) == 20 and kept[-4:] == [88, 89, 90, 91]
    run_chunks(llama, cache, random_ids(10, seed=8), chunk=10, protected=True)
    run_chunks(llama, cache, random_ids(30, seed=9), chunk=8)
    kept = cache.kept_positions().tolist()
    assert kept[:12] == list(range(12)) and kept[12:22] == list(range(92, 102))
    assert len(kept) > 20  # 22 protected entries + the local window overflow the budget


def test_decode_stays_bounded_without_reallocation(llama, table):
    cfg = CacheConfig(initial=4, separators=8, local=8, max_entries=40, chunk_size=16, positions="shifted")
    cache = build_cache(llama.config, cfg, table)
    run_chunks(llama, cache, random_ids(64, seed=8), chunk=16)
    allocated = cache.stats().kv_bytes_allocated
    ids = random_ids(150, seed=9)
    gaps = []
    run_chunks(llama, cache, ids, chunk=1, before_chunk=lambda c: gaps.append(c.next_position - c.length))
    assert max(gaps) == DECODE_RENUMBER_SLACK - 1 and gaps.count(0) >= 2  # renumbered in batches
    rotary = cache.kept_rotary_positions()
    assert bool((rotary[1:] > rotary[:-1]).all()) and int(rotary[-1]) < 40 + DECODE_RENUMBER_SLACK
    stats = cache.stats()
    assert stats.kv_entries == 40 and stats.kv_entries_peak == 56
    assert stats.kv_bytes_allocated == allocated
    per_token = 2 * 2 * 2 * 16 * 4  # layers * (k + v) * kv_heads * head_dim * fp32 bytes
    assert stats.kv_bytes == 40 * per_token
    assert stats.kv_bytes_full_equivalent == stats.tokens_seen * per_token == 214 * per_token


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def test_matches_dynamic_cache_and_full_forward_on_default_model(default_model):
    model, tokenizer = default_model
    text = "The whale surfaced near the ship. Ishmael counted the harpoons, one by one;\n" * 8
    ids = tokenizer(text, return_tensors="pt").input_ids[:, :120]
    assert ids.shape[1] == 120
    cache = build_cache(model.config, CacheConfig(max_entries=512, chunk_size=48), separator_table(tokenizer))
    ours = run_chunks(model, cache, ids, chunk=48, hidden=True)
    dynamic = DynamicCache(config=model.config)
    chunks = []
    with torch.inference_mode():
        for start in range(0, ids.shape[1], 48):
            out = model.model(input_ids=ids[:, start:start + 48], cache=dynamic, use_cache=True)
            chunks.append(out.last_hidden_state.float())
        whole = model.model(ids).last_hidden_state.float()
    torch.testing.assert_close(ours, torch.cat(chunks, 1), atol=1e-3, rtol=1e-3)
    assert _cosine(ours, whole).min() > 0.995  # bf16: chunking changes rounding only


def test_default_model_eviction_equals_masked_reference(default_model):
    model, tokenizer = default_model
    text = "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail.\n" * 6
    ids = tokenizer(text, return_tensors="pt").input_ids[:, :128]
    cfg = CacheConfig(initial=4, separators=16, local=16, max_entries=48, chunk_size=32, positions="original")
    recorder = KeptRecorder()
    ours = run_chunks(model, build_cache(model.config, cfg, separator_table(tokenizer)), ids, 32,
                      before_chunk=recorder, hidden=True)
    assert recorder.kept[-1].numel() == 48
    reference = masked_reference(model, ids, 32, recorder.kept, hidden=True)
    assert _cosine(ours, reference).min() > 0.995
    unmasked = masked_reference(model, ids, 32, [torch.arange(0, start) for start in range(0, 128, 32)],
                                hidden=True)
    assert _cosine(ours[:, 64:], unmasked[:, 64:]).min() < _cosine(ours, reference).min()


def test_protocol_misuse_is_reported(llama, table):
    cache = build_cache(llama.config, CacheConfig(max_entries=64, separators=8, local=8), table)
    cache.push_tokens(torch.tensor([[5, 6]]))
    with pytest.raises(RuntimeError, match="compress"):
        cache.push_tokens(torch.tensor([[7]]))
    with pytest.raises(ValueError):
        cache.next_position_ids(3)
    with pytest.raises(RuntimeError, match="forward"):
        cache.compress()


def test_refusals_and_fallbacks(table, caplog):
    gpt2 = GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=128)
    with pytest.raises(ValueError, match="no rotary positions"):
        build_cache(gpt2, CacheConfig.balanced(), table)
    assert isinstance(build_cache(gpt2, CacheConfig.full()), SepCache)
    with pytest.raises(ValueError, match="separator table"):
        build_cache(LlamaConfig(num_hidden_layers=1), CacheConfig.balanced(), None)
    dynamic = LlamaConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=4, intermediate_size=64,
                          rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0})
    with pytest.raises(ValueError, match="dynamic"):
        build_cache(dynamic, CacheConfig.balanced().with_(positions="shifted"), table)
    with caplog.at_level(logging.WARNING):
        cache = build_cache(dynamic, CacheConfig.balanced(), table)
    assert cache.positions_mode == "original" and "falls back" in caplog.text


def test_fork_is_independent(llama, table):
    cfg = CacheConfig(initial=2, separators=4, local=4, max_entries=16, chunk_size=8, positions="shifted")
    cache = build_cache(llama.config, cfg, table)
    run_chunks(llama, cache, random_ids(40, seed=20), chunk=8)
    with torch.inference_mode():
        fork = cache.fork()
    tail = random_ids(8, seed=21)
    first = run_chunks(llama, fork, tail, chunk=8)
    assert cache.stats().tokens_seen == 40 and fork.stats().tokens_seen == 48
    again = run_chunks(llama, cache, tail, chunk=8)
    torch.testing.assert_close(first, again, atol=0, rtol=0)


def test_int8_quantization_error_is_half_a_step():
    from sepllm_core.cache import dequantize_int8, quantize_int8

    x = torch.randn(2, 3, 50, 64) * torch.logspace(-2, 1, 50)[None, None, :, None]
    x[0, 0, 0] = 0.0  # an all-zero vector must not divide by zero
    codes, scale = quantize_int8(x, torch.bfloat16)
    assert codes.dtype == torch.int8 and scale.dtype == torch.bfloat16 and scale.shape == (2, 3, 50, 1)
    assert int(codes.abs().max()) == 127
    error = (dequantize_int8(codes, scale, torch.float32) - x).abs()
    assert bool((error <= scale.float() / 2 + 1e-6).all())
    assert torch.equal(dequantize_int8(codes, scale, torch.float32)[0, 0, 0], torch.zeros(64))
    exact = (codes.float() * scale.float()).to(torch.bfloat16)  # bf16 arithmetic rounds the exact product once
    assert torch.equal(dequantize_int8(codes, scale, torch.bfloat16), exact)


@pytest.mark.parametrize("positions", ["original", "shifted"])
def test_int8_cache_tracks_the_bf16_cache_through_eviction(table, positions):
    """Same stream, same kept set; keys and values within int8 rounding; logits close; 0.52x the bytes."""
    model = tiny_model("llama", layers=2, dtype=torch.bfloat16)
    ids = random_ids(120, seed=3)
    caches, logits = [], []
    for quant in ("none", "int8"):
        cfg = CacheConfig(policy="sepllm", initial=4, separators=8, local=8, max_entries=32, chunk_size=16,
                          positions=positions, kv_quant=quant)
        cache = build_cache(model.config, cfg, table)
        logits.append(run_chunks(model, cache, ids, 16))
        caches.append(cache)
    plain, quant = caches
    assert plain.evicted == quant.evicted > 0
    assert torch.equal(plain.kept_positions(), quant.kept_positions())
    for a, b in zip(plain.layers, quant.layers, strict=True):
        assert b.keys.dtype == torch.int8
        keys = b._key_buf[:, :, : b.length].float() * b._key_scale[:, :, : b.length].float()
        values = b._value_buf[:, :, : b.length].float() * b._value_scale[:, :, : b.length].float()
        step = b._key_scale[:, :, : b.length].float().amax()
        assert (keys - a.keys.float()).abs().max() <= 2 * step  # one rounding (+ one per renumbering, bounded)
        assert (values - a.values.float()).abs().max() <= b._value_scale[:, :, : b.length].float().amax()
    assert (logits[0] - logits[1]).abs().max() < 0.05 * logits[0].abs().max()
    s_plain, s_quant = plain.stats(), quant.stats()
    assert s_quant.kv_bytes_full_equivalent == s_plain.kv_bytes_full_equivalent
    assert s_quant.kv_bytes * 32 == s_plain.kv_bytes * (16 + 2)  # 16-dim heads: 16 int8 codes + a bf16 scale vs 16 bf16
