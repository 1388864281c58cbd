"""attend_span against references: output_attentions of one plain forward, a brute-force masked
forward after eviction, and a hand-written attention over the cache's own keys (shifted, int8)."""

from __future__ import annotations

import pytest
import torch

from sepllm_core.attention import EntryAttention, attend_span, attention_modules
from sepllm_core.cache import build_cache, dequantize_int8
from sepllm_core.config import CacheConfig
from tests.sepllm_core.tiny_models import (
    ARCHITECTURES,
    KeptRecorder,
    random_ids,
    run_chunks,
    separator_table_for_tiny,
    tiny_model,
)


def eager_attentions(model, ids: torch.Tensor, mask: torch.Tensor | None = None) -> tuple:
    """Per-layer attention weights ``[1, H, n, n]`` and logits of one eager forward over ``ids``."""
    before = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        with torch.inference_mode():
            kwargs = {"attention_mask": mask, "position_ids": torch.arange(ids.shape[1])[None]} if mask is not None else {}
            out = model(input_ids=ids, output_attentions=True, use_cache=False, **kwargs)
    finally:
        model.config._attn_implementation = before
    return out.attentions, out.logits[0, -1].float()


def full_layers(model) -> list[int]:
    types = getattr(model.config, "layer_types", None) or ["full_attention"] * model.config.num_hidden_layers
    return [i for i, kind in enumerate(types) if kind == "full_attention"]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_full_cache_equals_output_attentions(arch):
    model = tiny_model(arch, layers=2)
    doc, span = random_ids(70, seed=1), random_ids(9, seed=7)
    cache = build_cache(model.config, CacheConfig.full().with_(chunk_size=16), separator_table_for_tiny())
    run_chunks(model, cache, doc, chunk=16)
    measured, logits = attend_span(model, cache, span, heads="none")
    attentions, reference_logits = eager_attentions(model, torch.cat([doc, span], dim=1))
    assert measured.layers == tuple(full_layers(model))
    assert measured.positions.tolist() == list(range(70))
    for row, layer in enumerate(measured.layers):
        reference = attentions[layer][0, :, 70:, :70].float().sum(dim=1)  # [H, 70]
        torch.testing.assert_close(measured.mass[row], reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, reference_logits, atol=1e-4, rtol=1e-4)
    assert cache.stats().tokens_seen == 79  # the span was read like any text


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "mistral", "phi3"])
@pytest.mark.parametrize("policy", ["sepllm", "window"])
def test_after_eviction_equals_masked_reference(arch, policy):
    """Original positions: the evicting cache is one forward where each chunk sees what was kept."""
    model = tiny_model(arch, layers=2)
    doc, span = random_ids(96, seed=3), random_ids(8, seed=9)
    config = CacheConfig(policy=policy, initial=4, separators=8, local=8, max_entries=28, chunk_size=8,
                         positions="original")
    cache = build_cache(model.config, config, separator_table_for_tiny())
    recorder = KeptRecorder()
    run_chunks(model, cache, doc, chunk=8, before_chunk=recorder)
    kept = cache.kept_positions().clone()
    measured, _ = attend_span(model, cache, span, heads="sum")
    assert measured.positions.tolist() == kept.tolist() and len(kept) < 96
    ids = torch.cat([doc, span], dim=1)
    n = ids.shape[1]
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for k, start in enumerate(range(0, 96, 8)):
        allowed[start:start + 8, recorder.kept[k]] = True
        allowed[start:start + 8, start:start + 8] = torch.ones(8, 8, dtype=torch.bool).tril()
    allowed[96:, kept] = True
    allowed[96:, 96:] = torch.ones(8, 8, dtype=torch.bool).tril()
    mask = torch.zeros(n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)[None, None]
    attentions, _ = eager_attentions(model, ids, mask)
    for row, layer in enumerate(measured.layers):
        reference = attentions[layer][0, :, 96:, kept].float().sum(dim=(0, 1))  # heads and span summed
        torch.testing.assert_close(measured.mass[row], reference, atol=1e-5, rtol=1e-4)


def hand_attention(model, cache, span: torch.Tensor) -> dict[int, torch.Tensor]:
    """A Llama-style attention written out over the cache's stored keys: ``{layer: [H, n]}`` in stream order.

    The span's hidden states and rotary cos/sin are taken from a plain forward of the span through a
    fork of the cache; queries and keys are projected and rotated here, the cache's keys dequantized
    here, and the softmax over [cached entries, span causally] computed in fp32.
    """
    fork = cache.fork()
    slots = fork.entry_positions()
    stored = {}
    for layer_index, layer in enumerate(fork.layers):
        n = layer.length
        if layer.quantized:
            keys = dequantize_int8(layer._key_buf[:, :, :n], layer._key_scale[:, :, :n], torch.float32)
        else:
            keys = layer.keys.float().clone()
        stored[layer_index] = keys  # [1, kv, n, d]
    inputs = {}

    def grab(index):
        def hook(module, args, kwargs):
            inputs[index] = (kwargs.get("hidden_states", args[0] if args else None), kwargs["position_embeddings"])
        return hook

    modules = attention_modules(model)
    handles = [modules[i].register_forward_pre_hook(grab(i), with_kwargs=True) for i in modules]
    try:
        with torch.inference_mode():
            fork.push_tokens(span)
            model(input_ids=span, position_ids=fork.next_position_ids(span.shape[1]), cache=fork, use_cache=True)
            fork.compress()
    finally:
        for handle in handles:
            handle.remove()
    result = {}
    with torch.inference_mode():
        for index, module in modules.items():
            result[index] = _written_out(module, inputs[index], stored[index], slots)
    return result


def _written_out(module, inputs, stored, slots) -> torch.Tensor:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    hidden, (cos, sin) = inputs
    q_len = hidden.shape[1]
    shape = (1, q_len, -1, module.head_dim)
    q = module.q_proj(hidden).view(shape).transpose(1, 2).float()
    k = module.k_proj(hidden).view(shape).transpose(1, 2).float()
    q, k = apply_rotary_pos_emb(q, k, cos.float(), sin.float())
    keys = torch.cat([stored, k], dim=2)  # [1, kv, n + q, d]
    keys = keys.repeat_interleave(module.num_key_value_groups, dim=1)
    scores = (q @ keys.transpose(2, 3)) * module.scaling  # [1, H, q, n + q]
    n = stored.shape[2]
    causal = torch.ones(q_len, q_len, dtype=torch.bool).tril()
    allowed = torch.cat([torch.ones(q_len, n, dtype=torch.bool), causal], dim=1)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    per_entry = weights[0, :, :, :n].sum(dim=1)  # [H, n]
    return per_entry[:, torch.argsort(slots)]


@pytest.mark.parametrize("kv_quant", ["none", "int8"])
@pytest.mark.parametrize("positions", ["original", "shifted"])
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_shifted_and_int8_equal_hand_attention(arch, positions, kv_quant):
    model = tiny_model(arch, layers=2)
    doc, span = random_ids(110, seed=4), random_ids(6, seed=11)
    config = CacheConfig(policy="sepllm", initial=4, separators=8, local=10, max_entries=30, chunk_size=10,
                         positions=positions, kv_quant=kv_quant)
    cache = build_cache(model.config, config, separator_table_for_tiny())
    run_chunks(model, cache, doc, chunk=10)
    reference = hand_attention(model, cache, span)
    if positions == "shifted":
        assert cache.kept_rotary_positions().tolist() == list(range(cache.length))
    measured, _ = attend_span(model, cache, span, heads="none")
    for row, layer in enumerate(measured.layers):
        torch.testing.assert_close(measured.mass[row], reference[layer], atol=2e-5, rtol=2e-4)


def test_default_model_full_cache_and_shifted(default_model, shared_data):
    """The real default model (bf16): a full cache against output_attentions, a shifted SepLLM cache
    against the hand-written attention."""
    model, tokenizer = default_model
    text = (shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt").read_text()[20000:26000]
    doc = torch.tensor([tokenizer(text, add_special_tokens=False).input_ids[:700]])
    span = torch.tensor([tokenizer("\nSummarize the text above in three sentences.", add_special_tokens=False).input_ids])
    cache = build_cache(model.config, CacheConfig.full().with_(chunk_size=256))
    run_chunks(model, cache, doc, chunk=256)
    measured, _ = attend_span(model, cache, span, heads="sum")
    attentions, _ = eager_attentions(model, torch.cat([doc, span], dim=1))
    assert measured.mass.shape == (30, 700)
    for row, layer in enumerate(measured.layers):
        reference = attentions[layer][0, :, 700:, :700].float().sum(dim=(0, 1))
        # bf16: chunked reading and one forward round differently; the shares must agree closely
        assert (measured.mass[row] - reference).abs().max() < 0.05 * reference.max() + 0.02
        assert torch.corrcoef(torch.stack([measured.mass[row], reference]))[0, 1] > 0.99

    from sepllm_core.generate import cached_separator_table

    config = CacheConfig(policy="sepllm", initial=4, separators=64, local=128, max_entries=256, chunk_size=128,
                         positions="shifted")
    cache = build_cache(model.config, config, cached_separator_table(tokenizer))
    run_chunks(model, cache, doc, chunk=128)
    reference = hand_attention(model, cache, span)
    measured, _ = attend_span(model, cache, span, heads="none")
    assert measured.positions.numel() <= 256 and measured.positions[-1] == 699  # entries held before the span
    for row, layer in enumerate(measured.layers):
        got, want = measured.mass[row].sum(dim=0), reference[layer].sum(dim=0)
        assert (got - want).abs().max() < 0.05 * want.max() + 0.02
        assert torch.corrcoef(torch.stack([got, want]))[0, 1] > 0.99


def test_nothing_stays_hooked_and_errors():
    model = tiny_model("gemma2", layers=2)
    cache = build_cache(model.config, CacheConfig.full().with_(chunk_size=16), separator_table_for_tiny())
    run_chunks(model, cache, random_ids(20), chunk=16)
    implementation = model.config._attn_implementation
    measured, _ = attend_span(model, cache, random_ids(3, seed=2), heads="mean")
    assert isinstance(measured, EntryAttention) and measured.layers == (1,)  # layer 0 slides
    assert measured.mass.shape == (1, 20) and measured.query_tokens == 3
    assert measured.combined().shape == (20,)
    assert model.config._attn_implementation == implementation
    assert all(not m._forward_hooks for m in attention_modules(model).values())
    with pytest.raises(ValueError, match="not full-attention"):
        attend_span(model, cache, random_ids(3), layers=[0])
    with pytest.raises(ValueError, match="heads"):
        attend_span(model, cache, random_ids(3), heads="max")
    with pytest.raises(ValueError, match="at least one"):
        attend_span(model, cache, [])
