"""load_model on CPU (bf16, fp32, 8-bit, 4-bit) against the memory estimate; fit checks; out-of-memory."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from app.engine.estimate import MemoryEstimate, check_fits, estimate_memory
from app.engine.memory import out_of_memory_as_resource_error, sample_memory
from app.engine.models import load_model
from app.errors import ModelError, ResourceError
from sepllm_core.cache import build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.stream import forward_chunk
from tests.app.engine.conftest import next_token_logits

BASE = "smollm2-135m-instruct"  # the default model without the shipped SepLLM adapter


@pytest.mark.parametrize(
    ("quant", "dtype", "layer_class"),
    [
        ("none", "bf16", "Linear"),
        ("none", "fp32", "Linear"),
        ("8bit", "bf16", "Linear8bitLt"),
        ("4bit", "bf16", "Linear4bit"),
    ],
)
def test_load_on_cpu_matches_estimate_and_reference(
    installed_home, reference_logits, quant, dtype, layer_class
):
    loaded = load_model(BASE, device="cpu", quant=quant, dtype=dtype)

    assert (loaded.device, loaded.quant, loaded.dtype) == ("cpu", quant, dtype)
    assert type(loaded.model.model.layers[0].mlp.down_proj).__name__ == layer_class
    assert loaded.load_seconds > 0 and loaded.path.name == "smollm2-135m-instruct"
    # The estimate from the safetensors headers against what the loaded model holds.
    estimate = estimate_memory(BASE, "cpu", quant, None, tokens=1024, dtype=dtype)
    assert estimate.weights_bytes == pytest.approx(loaded.weights_bytes, rel=0.10)
    # Quantized logits stay close to bf16 and agree on the answer.
    logits = next_token_logits(loaded)
    assert torch.isfinite(logits).all()
    assert loaded.tokenizer.decode(int(logits.argmax())) == " Paris"
    correlation = torch.corrcoef(torch.stack([logits, reference_logits]))[0, 1]
    assert correlation > {"none": 0.999, "8bit": 0.95, "4bit": 0.8}[quant]  # nf4 measured 0.88


def test_packed_for_inference_on_cpu_same_logits_same_memory(installed_home, reference_logits):
    """pack=True (what summarize and eval use): oneDNN-packed layers, equal logits, no extra weight bytes
    with bf16 decode weights; with ``auto`` the default model (4-bit already) gets int4 decode copies, counted."""
    plain = load_model(BASE, device="cpu", dtype="bf16")
    packed = load_model(BASE, device="cpu", dtype="bf16", pack=True, decode_weights="bf16")
    layers = packed.model.config.num_hidden_layers
    assert (plain.packed_layers, packed.packed_layers) == (0, 7 * layers)
    assert type(packed.model.model.layers[0].mlp.down_proj).__name__ == "PackedLinear"
    assert packed.weights_bytes == plain.weights_bytes
    assert (plain.decode_weights, packed.decode_weights) == ("model", "bf16")
    assert torch.equal(next_token_logits(packed), next_token_logits(plain))
    auto = load_model(BASE, device="cpu", dtype="bf16", pack=True)
    assert auto.decode_weights == "int4" and torch.equal(next_token_logits(auto), next_token_logits(plain))
    linear_params = sum(p.numel() for name, p in plain.model.named_parameters() if "layers." in name and p.dim() == 2)
    assert auto.weights_bytes - plain.weights_bytes == linear_params // 2 + linear_params // 32 * 4  # codes, scale+zero
    assert load_model(BASE, device="cpu", quant="8bit", pack=True).packed_layers == 0
    with pytest.raises(ModelError, match="decode weights 'int2' not known"):
        load_model(BASE, device="cpu", pack=True, decode_weights="int2")


def test_packing_adds_no_peak_memory(installed_home):
    """Fresh processes: load (packed or not) and a 512-token forward; packing must not raise the peak RSS,
    and int4 decode copies (the default for the default model) add no more than their own bytes.

    The replaced weights' pages of the memory-mapped safetensors file are released as each layer
    is packed; without that the packed copies came on top of them (+190 MB measured).
    """
    script = (
        "import sys, torch\n"
        "from app.engine.models import load_model\n"
        "loaded = load_model('smollm2-135m-instruct', device='cpu', dtype='bf16', pack=sys.argv[1] != 'plain', decode_weights="
        "'int4' if sys.argv[1] == 'int4' else 'bf16')\n"
        "with torch.no_grad():\n"
        "    loaded.model(torch.randint(100, 40000, (1, 512)))\n"
        "print(loaded.weights_bytes)\n"
        "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
    )
    peaks, weights = {}, {}
    for how in ("plain", "packed", "int4"):
        result = subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        weights[how], peaks[how] = int(lines[-2]), int(lines[-1]) * 1024
    assert peaks["packed"] < peaks["plain"] * 1.05, peaks
    int4_copies = weights["int4"] - weights["packed"]
    assert 50e6 < int4_copies < 80e6 and peaks["int4"] < peaks["plain"] * 1.05 + int4_copies, (peaks, weights)


def test_quantized_weights_are_smaller(installed_home):
    sizes = {
        q: estimate_memory(BASE, "cpu", q, None, tokens=1, dtype="bf16").weights_bytes
        for q in ("none", "8bit", "4bit")
    }
    assert sizes["4bit"] < sizes["8bit"] < sizes["none"]
    assert sizes["none"] == pytest.approx(269_000_000, rel=0.01)  # 134.5 M parameters x 2 bytes


def test_kv_estimate_equals_a_real_cache(installed_home, default_model):
    model, tokenizer = default_model
    ids = torch.randint(100, 40_000, (1, 300))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    held = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)

    full = estimate_memory(BASE, "cpu", "none", None, tokens=300, dtype="bf16")
    assert full.kv_bytes == full.kv_bytes_full == held == 2 * 30 * 3 * 64 * 2 * 300
    bounded = estimate_memory(BASE, "cpu", "none", 100, tokens=300, dtype="bf16")
    assert bounded.kv_entries == 100 and bounded.kv_bytes * 3 == held and bounded.kv_bytes_full == held
    int8 = CacheConfig.window(100).with_(chunk_size=16, kv_quant="int8")
    quantized = estimate_memory(BASE, "cpu", "none", int8, tokens=300, dtype="bf16")
    assert quantized.kv_bytes_per_entry == 2 * 30 * 3 * (64 + 2) and quantized.kv_bytes_full == held
    assert bounded.kv_bytes_int8 == 2 * 30 * 3 * (64 + 2) * 100
    assert quantized.kv_bytes_int8 == 0  # nothing left to suggest
    cache = build_cache(model.config, int8)  # the estimate per entry is what the int8 cache holds
    forward_chunk(model, cache, ids[:, :50])
    assert cache.stats().kv_bytes == quantized.kv_bytes_per_entry * 50


def test_cache_config_objects_count_one_chunk_over_budget(installed_home):
    class Config:  # the fields estimate reads from sepllm_core.config.CacheConfig
        policy, max_entries, chunk_size = "sepllm", 1024, 256

    estimate = estimate_memory(BASE, "cpu", "none", Config(), tokens=8192, dtype="bf16")
    assert estimate.kv_entries == 1024 + 256 and estimate.bounded
    Config.policy = "full"
    assert estimate_memory(BASE, "cpu", "none", Config(), tokens=8192, dtype="bf16").kv_entries == 8192


def test_total_estimate_against_measured_peak_rss(installed_home, default_model_dir):
    """Load bf16 in a fresh process, prefill 2048 tokens, compare peak RSS with the estimated total."""
    script = (
        "import json, torch\n"
        "from app.engine.models import load_model\n"
        "from app.engine.memory import sample_memory\n"
        "loaded = load_model('smollm2-135m-instruct', device='cpu', dtype='bf16', pack=True)\n"
        "ids = torch.randint(100, 40000, (1, 2048))\n"
        "with torch.no_grad():\n"
        "    for start in range(0, 2048, 512):\n"
        "        out = loaded.model(ids[:, :start + 512][:, -512:], cache=out.past_key_values"
        " if start else None, use_cache=True, logits_to_keep=1)\n"
        "print(json.dumps(sample_memory()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    peak = json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_bytes"]
    estimate = estimate_memory(BASE, "cpu", "none", None, tokens=2048, dtype="bf16")
    assert 0.6 < estimate.total_bytes / peak < 1.5, (estimate.describe(), peak)


def test_refusal_names_the_numbers_and_a_fix(installed_home):
    huge = estimate_memory(BASE, "cpu", "none", None, tokens=2_000_000, dtype="bf16")
    with pytest.raises(ResourceError) as caught:
        check_fits(huge, "cpu")
    message = str(caught.value)
    assert message.startswith("smollm2-135m-instruct needs ") and " of RAM (" in message
    assert "GB free: use a bounded cache (--cache sepllm) of at most " in message and "\n" not in message
    check_fits(estimate_memory(BASE, "cpu", "none", 1024, tokens=2_000_000, dtype="bf16"), "cpu")


def test_suggests_the_lightest_quantization_that_fits():
    estimate = MemoryEstimate(
        model="big-model",
        device="cuda",
        quant="none",
        dtype="bf16",
        weights_bytes=5_500_000_000,
        kv_bytes=300_000_000,
        kv_bytes_full=300_000_000,
        kv_entries=4096,
        tokens=4096,
        overhead_bytes=300_000_000,
        kv_bytes_per_entry=73_728,
        weights_bytes_by_quant={"none": 5_500_000_000, "8bit": 3_500_000_000, "4bit": 1_800_000_000},
    )
    from app.engine.estimate import _suggest_fix

    assert estimate.total_bytes == 6_100_000_000
    assert _suggest_fix(estimate, "cuda", free=3_900_000_000) == "choose --quant 4bit"
    assert _suggest_fix(estimate, "cuda", free=4_200_000_000) == "choose --quant 8bit"
    estimate = dataclasses.replace(estimate, kv_bytes_int8=154_687_500)  # int8 entries: 66 of 128 bytes
    assert _suggest_fix(estimate, "cuda", free=5_960_000_000) == "store the cache as int8 (--kv-quant int8)"
    assert _suggest_fix(estimate, "cuda", free=5_900_000_000) == "choose --quant 8bit"


def test_out_of_memory_becomes_a_resource_error():
    with pytest.raises(ResourceError) as caught, out_of_memory_as_resource_error("testing a huge tensor"):
        torch.empty(10**15, dtype=torch.uint8)  # a real failed allocation
    assert str(caught.value).startswith("ran out of memory while testing a huge tensor (")
    with pytest.raises(RuntimeError, match="unrelated"), out_of_memory_as_resource_error("x"):
        raise RuntimeError("unrelated")


def test_sample_memory_reports_rss_without_starting_cuda():
    sample = sample_memory()
    assert set(sample) == {
        "rss_bytes",
        "peak_rss_bytes",
        "gpu_allocated_bytes",
        "gpu_reserved_bytes",
        "gpu_peak_bytes",
    }
    assert 50_000_000 < sample["rss_bytes"] <= sample["peak_rss_bytes"]
    if not torch.cuda.is_initialized():
        assert sample["gpu_allocated_bytes"] == 0 and not torch.cuda.is_initialized()


def test_estimate_counts_the_int4_decode_copy(installed_home):
    """The pre-load estimate counts what ``load_model(pack=True)`` will hold: the default model (4-bit
    already) gets the int4 decode copy with ``auto``; ``bf16`` does not."""
    bf16, auto, int4 = (estimate_memory(BASE, "cpu", "none", None, tokens=1024, dtype="bf16", decode_weights=w)
                        for w in ("bf16", "auto", "int4"))
    loaded = load_model(BASE, device="cpu", dtype="bf16", pack=True)
    assert auto.weights_bytes == int4.weights_bytes == pytest.approx(loaded.weights_bytes, rel=1e-5)  # + buffers
    assert auto.weights_bytes - bf16.weights_bytes == pytest.approx(66_355_200, rel=0.01)
    assert estimate_memory(BASE, "cpu", "none", None, tokens=1024, dtype="bf16", decode_weights="auto",
                           four_bit_source=False).weights_bytes == bf16.weights_bytes
