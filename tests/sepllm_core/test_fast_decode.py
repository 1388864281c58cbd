"""Fast decode attention: equal to transformers' eager attention, greedy-equal Sessions, fallbacks."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from transformers.models.llama.modeling_llama import eager_attention_forward

from sepllm_core import fast_decode
from sepllm_core.cache import build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.decode_step import DecodeStep
from sepllm_core.events import Token
from sepllm_core.fast_decode import FastDecode, decode_attention
from sepllm_core.generate import Session
from sepllm_core.packing import FusedProjection, PackedLinear, ProjectionPart, pack_linears
from sepllm_core.positions import find_rotary_module

from .tiny_models import decode_steps, random_ids, run_chunks, separator_table_for_tiny, tiny_model


class _Module(torch.nn.Module):
    num_key_value_groups = 3


def _strided_cache(b: int, kv_heads: int, n: int, d: int, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Views ``[b, kv_heads, n, d]`` of larger buffers, as SepCache layers return them."""
    keys = torch.randn(b, kv_heads, capacity, d, dtype=torch.bfloat16)
    values = torch.randn(b, kv_heads, capacity, d, dtype=torch.bfloat16)
    return keys[:, :, :n], values[:, :, :n]


@pytest.mark.parametrize("batched", [True, False], ids=["bmm-over-heads", "mm-per-head"])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_decode_attention_equals_eager_attention(mask_kind, batched, monkeypatch):
    monkeypatch.setattr(fast_decode, "BATCHED_MAX_ENTRIES", 4096 if batched else 0)
    torch.manual_seed(0)
    b, heads, kv_heads, n, d = 2, 9, 3, 300, 64
    key, value = _strided_cache(b, kv_heads, n, d, capacity=400)
    query = torch.randn(b, heads, 1, d, dtype=torch.bfloat16)
    keep = torch.rand(b, 1, 1, n + 5) > 0.3  # longer than n, as masks over the cache's mask size are
    mask = {None: None, "bool": keep,
            "float": torch.zeros(keep.shape, dtype=torch.bfloat16).masked_fill(~keep, torch.finfo(torch.bfloat16).min)
            }[mask_kind]
    reference_mask = None
    if mask is not None:
        reference_mask = mask[..., :n]
        if reference_mask.dtype == torch.bool:
            reference_mask = torch.zeros(reference_mask.shape, dtype=torch.bfloat16).masked_fill(
                ~reference_mask, float("-inf"))
    expected, _ = eager_attention_forward(_Module(), query, key, value, reference_mask, scaling=0.125)
    got = decode_attention(query, key, value, mask, 0.125)
    assert got.shape == expected.shape == (b, 1, heads, d) and got.is_contiguous()
    assert torch.equal(got, expected)


@contextmanager
def _attention(model, name: str):
    old = model.config._attn_implementation
    model.config._attn_implementation = name
    try:
        yield
    finally:
        model.config._attn_implementation = old


def _greedy(model, tokenizer, ids, config, fast: bool, steps: int) -> list[int]:
    session = Session(model, tokenizer, config, fast_decode=fast)
    session.eos_ids = set()
    assert session.fast.active is fast
    list(session.feed(ids, protect=True))
    assert session.stats()["decode_path"].startswith("fast") if fast else (
        session.stats()["decode_path"] == "eager (disabled)")
    return [e.token_id for e in session.generate(steps, detect_repetition=False) if isinstance(e, Token)]


@pytest.fixture(scope="module")
def book_ids(default_model, shared_data):
    _, tokenizer = default_model
    text = (shared_data / "books" / "gutenberg_2701_Moby_Dick_Melville.txt").read_text(encoding="utf-8")
    return tokenizer(text[30000:36000], add_special_tokens=False)["input_ids"][:320]


@pytest.mark.parametrize("config", [CacheConfig.window(256).with_(chunk_size=128),
                                    CacheConfig.full().with_(chunk_size=128)], ids=["window-256", "full"])
def test_greedy_equals_eager_attention_path(default_model, book_ids, config):
    """Decoding past a 256-entry budget (evicting every step): the same tokens as the eager path."""
    model, tokenizer = default_model
    with _attention(model, "eager"):
        eager = _greedy(model, tokenizer, book_ids, config, fast=False, steps=24)
        fast = _greedy(model, tokenizer, book_ids, config, fast=True, steps=24)
    assert model.config._attn_implementation == "sdpa"
    assert len(fast) == 24 and fast == eager


def test_logits_close_to_sdpa_path(default_model, book_ids):
    """Against SDPA (the model's default), logits agree to bf16 rounding and pick the same tokens."""
    model, tokenizer = default_model
    forced = _greedy(model, tokenizer, book_ids, CacheConfig.balanced(), fast=False, steps=12)
    rows = {}
    for fast in (False, True):
        session = Session(model, tokenizer, CacheConfig.balanced(), fast_decode=fast)
        list(session.feed(book_ids))
        rows[fast] = torch.stack([session.step(token) for token in forced])
    assert (rows[True] - rows[False]).abs().max() < 1.0  # bf16 logits of magnitude ~20: a few ulps
    assert torch.equal(rows[True].argmax(-1), rows[False].argmax(-1))


def test_step_swaps_and_restores_only_for_one_forward(default_model):
    model, _ = default_model
    fast = FastDecode(model)
    assert fast.active and fast.reason is None and fast.head_reason is None
    with pytest.raises(RuntimeError, match="boom"), fast.step():
        assert model.config._attn_implementation == "sepllm_decode_sdpa"
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


def test_prefill_and_tiny_models_fall_back_unchanged():
    """Multi-token forwards go to the model's own attention; single-token ones match it closely."""
    model = tiny_model("qwen2", layers=2)
    fast = FastDecode(model)
    assert fast.active and "bf16" in str(fast.head_reason)  # fp32 model: its own output layer
    ids = torch.randint(4, 100, (1, 12))
    with torch.inference_mode():
        reference = model(input_ids=ids).logits
        with fast.step():
            prefill = model(input_ids=ids).logits
        assert torch.equal(prefill, reference)
        out = model(input_ids=ids[:, :-1], use_cache=True)
        plain = model(input_ids=ids[:, -1:], cache=out.past_key_values).logits
        out = model(input_ids=ids[:, :-1], use_cache=True)
        with fast.step():
            stepped = model(input_ids=ids[:, -1:], cache=out.past_key_values).logits
    torch.testing.assert_close(stepped, plain, rtol=1e-5, atol=1e-5)


def test_packed_head_logits_equal_the_models(default_model):
    """The prepacked output layer gives bit-equal logits to the model's own forward."""
    model, _ = default_model
    fast = FastDecode(model)
    ids = torch.tensor([[1, 504, 3458, 314, 260, 1345]])
    positions = torch.arange(ids.shape[1])[None]
    with torch.inference_mode():
        expected = model(input_ids=ids[:, :1], position_ids=positions[:, :1]).logits[0, -1].float()
        got = fast.forward(ids[:, :1], positions[:, :1], None)
    assert torch.equal(got, expected)
    assert fast._packed_head() is fast._packed_head()  # packed once per model


def test_unsupported_models_keep_their_attention():
    model = tiny_model("llama", layers=1)
    assert FastDecode(model, enabled=False).describe() == "eager (disabled)"
    model.config._attn_implementation = "flex_attention"
    off = FastDecode(model)
    assert not off.active and "flex_attention" in str(off.reason)
    with off.step():
        assert model.config._attn_implementation == "flex_attention"
    model.config._attn_implementation = "sdpa"
    model.hf_quantizer = object()
    assert "quantized" in str(FastDecode(model).reason)
    model.hf_quantizer = None
    model.to("meta")
    assert "meta" in str(FastDecode(model).reason)


@pytest.fixture(scope="module")
def packed_default_model(default_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.bfloat16).eval()
    return model, pack_linears(model)


def test_packed_linears_are_bit_equal_on_the_default_model(default_model, packed_default_model, book_ids):
    """Prefill logits and a greedy decode through the packed model equal the unpacked model's."""
    model, tokenizer = default_model
    packed, count = packed_default_model
    layers = packed.config.num_hidden_layers
    assert count == 7 * layers and packed._sepllm_packed  # q k v o gate up down per layer
    head = packed.get_output_embeddings()
    assert type(head) is torch.nn.Linear and head.weight is packed.get_input_embeddings().weight  # tied: left alone
    assert all(not p.requires_grad for m in packed.modules() if isinstance(m, PackedLinear) for p in m.parameters())
    ids = torch.tensor([book_ids[:96]])
    with torch.inference_mode():
        assert torch.equal(packed(input_ids=ids).logits, model(input_ids=ids).logits)
    attn, mlp = packed.model.layers[0].self_attn, packed.model.layers[0].mlp
    assert isinstance(attn.q_proj, ProjectionPart) and isinstance(mlp.up_proj, ProjectionPart)
    assert attn.fused_q_proj.sizes == (attn.q_proj.out_features, attn.k_proj.out_features, attn.v_proj.out_features)
    assert Session(packed, tokenizer).fast.describe() == "fast (written-out step)"
    config = CacheConfig.window(256).with_(chunk_size=128)
    assert _greedy(packed, tokenizer, book_ids, config, True, 16) == _greedy(model, tokenizer, book_ids, config,
                                                                            True, 16)


def test_packed_model_refuses_training(packed_default_model):
    packed, _ = packed_default_model
    layer = next(m for m in packed.modules() if isinstance(m, PackedLinear))
    x = torch.randn(1, 2, layer.in_features, dtype=torch.bfloat16, requires_grad=True)
    with pytest.raises(RuntimeError, match="packed for inference"):
        layer(x)


def test_pack_linears_keeps_biases_and_skips_other_dtypes():
    """Qwen2's q/k/v biases go through the packed path; fp32 models are left as they are."""
    model = tiny_model("qwen2", layers=2, dtype=torch.bfloat16)
    reference = tiny_model("qwen2", layers=2, dtype=torch.bfloat16)
    assert pack_linears(model) == 7 * 2 + 1  # the tiny model's head is not tied
    assert model.model.layers[0].self_attn.fused_q_proj.bias is not None
    ids = torch.randint(4, 100, (1, 9))
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    assert pack_linears(tiny_model("llama", layers=1)) == 0


def test_fused_projection_computes_once_per_input_and_lets_go():
    """Parts called with one tensor share one matmul; a new tensor recomputes; no reference outlives a round."""
    model = tiny_model("llama", layers=1, dtype=torch.bfloat16)
    reference = tiny_model("llama", layers=1, dtype=torch.bfloat16)
    pack_linears(model)
    attn, ref = model.model.layers[0].self_attn, reference.model.layers[0].self_attn
    fused = attn.fused_q_proj
    assert isinstance(fused, FusedProjection) and sum(p.numel() for p in attn.parameters()) == sum(
        p.numel() for p in ref.parameters())  # each weight counted once
    x, y = torch.randn(1, 3, 64, dtype=torch.bfloat16), torch.randn(1, 3, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(attn.q_proj(x), ref.q_proj(x))
        assert fused._input is x
        assert torch.equal(attn.k_proj(y), ref.k_proj(y))  # a different input: recomputed
        assert torch.equal(attn.q_proj(y), ref.q_proj(y)) and torch.equal(attn.v_proj(y), ref.v_proj(y))
    assert fused._input is None and fused._outputs == ()  # all three parts served
    assert pack_linears(tiny_model("llama", layers=1, dtype=torch.bfloat16), fuse=False) == 7 + 1
    with pytest.raises(RuntimeError, match="packed for inference"):
        fused(torch.randn(1, 64, dtype=torch.bfloat16, requires_grad=True))


@pytest.mark.parametrize(("arch", "kv_quant"), [("llama", "none"), ("qwen2", "none"), ("qwen3", "none"),
                                                 ("mistral", "none"), ("llama", "int8"), ("qwen2", "int8")])
def test_written_out_step_equals_the_models_forward(arch, kv_quant):
    """Decode steps through DecodeStep give the same logits as the model's own forward: bit for bit
    over bf16 entries, within int8 rounding over int8 entries (scores from the codes, not dequantized)."""
    packed = tiny_model(arch, layers=2, dtype=torch.bfloat16)
    reference = tiny_model(arch, layers=2, dtype=torch.bfloat16)
    for model in (packed, reference):  # eager prefill on both; decode_attention is bit-equal to eager
        model.config._attn_implementation = "eager"
    pack_linears(packed)
    assert DecodeStep.unsupported(packed) is None and DecodeStep.unsupported(reference) is not None
    fast = FastDecode(packed)
    assert fast.describe() == "fast (written-out step)"
    config = CacheConfig(policy="sepllm", initial=2, separators=8, local=8, max_entries=24, chunk_size=8,
                         positions="shifted", kv_quant=kv_quant)
    logits = []
    for model in (packed, reference):
        cache = build_cache(model.config, config, separator_table_for_tiny(), rotary=find_rotary_module(model))
        run_chunks(model, cache, random_ids(40), 8)
        # past the cap: evictions and renumbering
        logits.append(decode_steps(model, cache, random_ids(40, seed=5), fast=fast if model is packed else None))
        assert cache.evicted > 0
    if kv_quant == "none":
        assert torch.equal(logits[0], logits[1])
    else:
        assert (logits[0] - logits[1]).abs().max() < 0.02 * logits[1].abs().max()


def test_attention_over_padded_entries_equals_attention_over_the_valid_ones():
    """The step reads the cache in buckets of 64 entries; the padding must not change a bit."""
    from sepllm_core.cache import SepLayer

    torch.manual_seed(0)
    layer = SepLayer(capacity=200)
    for _ in range(3):  # grow past the first allocation: the grown tail must be zeros too
        layer.update(torch.randn(1, 3, 77, 64, dtype=torch.bfloat16), torch.randn(1, 3, 77, 64, dtype=torch.bfloat16))
    layer.move_(torch.arange(200, 231), torch.arange(10, 41), 150)  # evicted entries stay behind as padding
    keys, values = layer.padded_entries(192)
    assert keys.shape[2] == 192 and torch.isfinite(keys).all() and torch.isfinite(values).all()
    assert layer.padded_entries(10_000)[0].shape[2] == layer.capacity and layer.padded_entries(1)[0].shape[2] == 150
    for _ in range(20):
        query = torch.randn(1, 9, 1, 64, dtype=torch.bfloat16)
        reference = decode_attention(query, layer.keys, layer.values, None, 0.125)
        assert torch.equal(decode_attention(query, keys, values, None, 0.125, valid=150), reference)
    batch = [torch.randn(2, 9, 1, 64), torch.randn(2, 3, 8, 64), torch.randn(2, 3, 8, 64)]
    assert torch.equal(decode_attention(*batch, None, 0.1, valid=5),
                       decode_attention(batch[0], batch[1][:, :, :5], batch[2][:, :, :5], None, 0.1))
    with pytest.raises(ValueError, match="bf16"):
        SepLayer(8, quant="int8").padded_entries(8)


def test_int8_decode_attention_matches_attention_over_dequantized_entries():
    from sepllm_core.cache import dequantize_int8, quantize_int8

    torch.manual_seed(0)
    buffer = torch.randn(1, 3, 100, 64, dtype=torch.bfloat16)
    codes, scale = quantize_int8(buffer, torch.bfloat16)
    key_codes, key_scale = codes[:, :, :70], scale[:, :, :70]  # views with the buffers' strides
    value_codes, value_scale = quantize_int8(torch.randn(1, 3, 100, 64, dtype=torch.bfloat16))
    value_codes, value_scale = value_codes[:, :, :70], value_scale[:, :, :70]
    query = torch.randn(1, 9, 1, 64, dtype=torch.bfloat16)
    reference = decode_attention(query, dequantize_int8(key_codes, key_scale, torch.bfloat16),
                                 dequantize_int8(value_codes, value_scale, torch.bfloat16), None, 0.125)
    out = fast_decode.decode_attention_int8(query, key_codes, key_scale, value_codes, value_scale, 0.125)
    assert out.shape == reference.shape == (1, 1, 9, 64)
    assert (out.float() - reference.float()).abs().max() < 0.01 * reference.abs().max()


@pytest.mark.parametrize("arch", ["gemma2", "phi3"])
def test_other_architectures_have_no_written_out_step(arch):
    model = tiny_model(arch, layers=2, dtype=torch.bfloat16)
    pack_linears(model)
    reason = DecodeStep.unsupported(model)
    assert reason is not None and arch in reason
    with pytest.raises(ValueError, match="no written-out decode step"):
        DecodeStep(model)
