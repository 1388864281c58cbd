"""Fast decode attention: equal to transformers' eager attention, greedy-equal Sessions, fallbacks."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from transformers.models.llama.modeling_llama import eager_attention_forward

from sepllm_core.config import CacheConfig
from sepllm_core.events import Token
from sepllm_core.fast_decode import FastDecode, decode_attention
from sepllm_core.generate import Session

from .tiny_models import tiny_model


class _Module(torch.nn.Module):
    num_key_value_groups = 3


def _strided_cache(b: int, kv_heads: int, n: int, d: int, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Views ``[b, kv_heads, n, d]`` of larger buffers, as SepCache layers return them."""
    keys = torch.randn(b, kv_heads, capacity, d, dtype=torch.bfloat16)
    values = torch.randn(b, kv_heads, capacity, d, dtype=torch.bfloat16)
    return keys[:, :, :n], values[:, :, :n]


@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_decode_attention_equals_eager_attention(mask_kind):
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
    assert session.stats()["decode_path"] == ("fast" if fast else "eager (disabled)")
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
        logits = []
        with torch.inference_mode():
            for token in forced:
                logits.append(session._forward(torch.tensor([[token]]), False, decode=True))
        rows[fast] = torch.stack(logits)
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
