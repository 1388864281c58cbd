"""int4 decode weights: the format against a dequantized reference, the grid check, the decode step on them."""

from __future__ import annotations

import pytest
import torch

from sepllm_core import int4
from sepllm_core.cache import build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.decode_step import DecodeStep
from sepllm_core.fast_decode import FastDecode
from sepllm_core.generate import Session
from sepllm_core.packing import pack_linears
from sepllm_core.positions import find_rotary_module
from tests.conftest import IN_CI

from .tiny_models import decode_steps, random_ids, run_chunks, separator_table_for_tiny, tiny_model


@pytest.fixture(autouse=True)
def int4_kernel() -> None:
    """Every test here needs torch's int4 CPU kernel: missing, it fails under CI=true and skips locally."""
    reason = int4.supported()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"no int4 CPU kernel in this torch build ({reason}); CI=true requires the pinned torch")
    pytest.skip(f"no int4 CPU kernel in this torch build ({reason})")


@pytest.fixture(scope="module")
def book_ids(default_model, shared_data):
    _, tokenizer = default_model
    text = (shared_data / "books" / "gutenberg_2701_Moby_Dick_Melville.txt").read_text(encoding="utf-8")
    return tokenizer(text[30000:36000], add_special_tokens=False)["input_ids"][:320]


def grid_weight(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A bf16 weight that is 4-bit already: per group of 32, ``code * d + m`` as a Q4_1 GGUF dequantizes."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (rows, cols // 32, 32), generator=generator).float()
    codes[..., 0], codes[..., 1] = 0, 15  # Q4_1 takes d and m from the group's max and min
    d = torch.rand(rows, cols // 32, 1, generator=generator) * 0.01 + 0.001
    m = -8 * d + torch.randn(rows, cols // 32, 1, generator=generator) * 0.002
    return (codes * d + m).reshape(rows, cols).to(torch.bfloat16)


def test_int4_linear_equals_the_dequantized_weight():
    """The kernel computes x @ dequantize(codes).T; rounding to nearest stays within half a step."""
    torch.manual_seed(0)
    weight = torch.randn(96, 128, dtype=torch.bfloat16) * 0.05
    codes, scales, zeros = int4.quantize(weight)
    assert codes.min() >= 0 and codes.max() <= 15 and scales.shape == (96, 4)
    reference = int4.dequantize(codes, scales, zeros)
    step = scales.float().repeat_interleave(32, dim=1)
    assert ((reference - weight.float()).abs() <= step * 0.5 + 1e-3).all()
    x = torch.randn(2, 3, 128, dtype=torch.bfloat16)
    bias = torch.randn(96, dtype=torch.bfloat16)
    out = int4.int4_linear(x, int4.pack(weight), bias)
    expected = x.float() @ reference.t() + bias.float()
    assert out.shape == (2, 3, 96) and out.dtype == torch.bfloat16
    assert (out.float() - expected).abs().max() < 0.02 * expected.abs().max()
    with pytest.raises(ValueError, match="multiple of the int4 group size"):
        int4.quantize(torch.randn(4, 48))


def test_on_grid_tells_4bit_weights_from_others():
    weight = grid_weight(64, 96)
    assert int4.on_grid(weight)
    assert not int4.on_grid(torch.randn(64, 96, dtype=torch.bfloat16))
    for w, most in ((weight, 0.1), (torch.randn(64, 96, dtype=torch.bfloat16), 0.5)):
        codes, scales, zeros = int4.quantize(w)  # a grid weight comes back within bf16 rounding
        error = (int4.dequantize(codes, scales, zeros) - w.float()).abs()
        steps = error / scales.float().repeat_interleave(32, dim=1)
        assert steps.max() <= most and (most == 0.5 or steps.max() < 0.1)
    assert steps.max() > 0.4  # random weights lose up to half a step


def test_default_model_is_on_the_grid_but_its_embedding_is_not(default_model):
    """The default model was dequantized from a Q4_1 GGUF: its linear layers are 4-bit, its tied
    embedding (the output layer, which the decode step keeps in bf16) is not."""
    model, _ = default_model
    layer = model.model.layers[3]
    assert int4.on_grid(layer.self_attn.q_proj.weight) and int4.on_grid(layer.mlp.down_proj.weight)
    assert not int4.on_grid(model.get_input_embeddings().weight[:4096])


def test_pack_linears_int4_modes():
    """``on`` keeps a 4-bit copy of every packed weight, ``on_grid`` only for 4-bit models, ``off`` never."""
    model = tiny_model("llama", layers=2, dtype=torch.bfloat16)
    pack_linears(model, int4_decode="on_grid")  # random weights are not on a 4-bit grid
    assert model._sepllm_int4 is False and model.model.layers[0].self_attn.fused_q_proj.int4 is None
    model = tiny_model("llama", layers=2, dtype=torch.bfloat16)
    with torch.no_grad():
        for module in model.modules():
            if type(module) is torch.nn.Linear and module.weight.shape[1] % 32 == 0:
                module.weight.copy_(grid_weight(*module.weight.shape, seed=module.weight.shape[0]))
    pack_linears(model, int4_decode="on_grid")
    layer = model.model.layers[1]
    assert model._sepllm_int4 is True
    assert layer.self_attn.fused_q_proj.int4 is not None and layer.mlp.down_proj.int4 is not None
    assert layer.self_attn.fused_q_proj.int4.out_features == sum(layer.self_attn.fused_q_proj.sizes)
    with pytest.raises(ValueError, match="int4_decode must be one of"):
        pack_linears(tiny_model("llama", layers=1, dtype=torch.bfloat16), int4_decode="yes")


@pytest.mark.parametrize(("arch", "kv_quant"), [("llama", "none"), ("qwen2", "none"), ("qwen3", "none"),
                                                 ("llama", "int8")])
def test_int4_step_equals_the_forward_on_dequantized_weights(arch, kv_quant):
    """Decode steps on int4 weights give the logits of the model's own forward whose linear layers
    hold the dequantized weights (within the kernel's bf16 rounding), through evictions; over
    bf16 or int8 cache entries."""
    packed = tiny_model(arch, layers=2, dtype=torch.bfloat16)
    reference = tiny_model(arch, layers=2, dtype=torch.bfloat16)
    with torch.no_grad():
        for module in reference.modules():
            if type(module) is torch.nn.Linear and module is not reference.get_output_embeddings():
                module.weight.copy_(int4.dequantize(*int4.quantize(module.weight)).to(torch.bfloat16))
    for model in (packed, reference):
        model.config._attn_implementation = "eager"
    pack_linears(packed, int4_decode="on")
    fast = FastDecode(packed)
    assert fast.describe() == "fast (written-out step, int4 weights)" and fast.decode_step.int4
    config = CacheConfig(policy="sepllm", initial=2, separators=8, local=8, max_entries=24, chunk_size=8,
                         positions="shifted", kv_quant=kv_quant)
    logits = []
    for switch in (fast, None):
        cache = build_cache(reference.config, config, separator_table_for_tiny(), rotary=find_rotary_module(reference))
        run_chunks(reference, cache, random_ids(40), 8)  # prefill reads bf16 weights: give both the same prefix
        logits.append(decode_steps(reference, cache, random_ids(40, seed=5), fast=switch))
        assert cache.evicted > 0
    assert (logits[0] - logits[1]).abs().max() < 0.02 * logits[1].abs().max()
    assert (logits[0].argmax(-1) == logits[1].argmax(-1)).float().mean() >= 0.9


def test_int4_decode_on_the_default_model_follows_bf16(default_model_dir, book_ids):
    """The app's default (decode weights ``auto``) on the default model: int4 copies, and a
    teacher-forced decode whose top token agrees with the bf16 step's (measured 97.5 % over 512)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    models = []
    for mode in ("off", "on_grid"):
        model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.bfloat16).eval()
        pack_linears(model, int4_decode=mode)
        models.append(model)
    assert DecodeStep(models[1]).int4 and not DecodeStep(models[0]).int4
    tops = []
    for model in models:
        session = Session(model, tokenizer, CacheConfig.window(256).with_(chunk_size=128))
        for _ in session.feed(torch.tensor(book_ids[:200])):
            pass
        tops.append(torch.stack([session.step(t) for t in book_ids[200:264]]).argmax(-1))
    assert "int4" in session.fast.describe()
    assert (tops[0] == tops[1]).float().mean() >= 0.85
