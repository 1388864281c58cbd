"""CUDA: device/dtype choice, 4-bit loading, estimate against allocated memory, out-of-memory (GPU machine only)."""

from __future__ import annotations

import pytest
import torch

from app.engine import devices
from app.engine.estimate import check_fits, estimate_memory
from app.engine.memory import out_of_memory_as_resource_error, reset_gpu_peak, sample_memory
from app.engine.models import load_model
from app.errors import ResourceError
from tests.app.engine.conftest import next_token_logits

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (run 'make test-gpu' on a GPU machine)")


def test_auto_choices_on_cuda():
    assert devices.choose_device("auto") == "cuda"
    major, _ = torch.cuda.get_device_capability()
    assert devices.choose_dtype("cuda", "auto") == (torch.bfloat16 if major >= 8 else torch.float16)


@pytest.mark.parametrize("quant", ["4bit", "none"])
def test_load_on_cuda_matches_estimate(installed_home, quant):
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    reset_gpu_peak()
    estimate = estimate_memory(None, "cuda", quant, None, tokens=4096)
    check_fits(estimate, "cuda")

    loaded = load_model(None, device="auto", quant=quant)
    held = torch.cuda.memory_allocated() - before

    assert loaded.device == "cuda" and loaded.quant == quant
    if quant == "4bit":
        assert type(loaded.model.model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
    assert estimate.weights_bytes == pytest.approx(held, rel=0.10)
    assert estimate.weights_bytes == pytest.approx(loaded.weights_bytes, rel=0.10)
    logits = next_token_logits(loaded)
    assert torch.isfinite(logits).all() and loaded.tokenizer.decode(int(logits.argmax())) == " Paris"
    sample = sample_memory()
    assert sample["gpu_allocated_bytes"] >= held and sample["gpu_peak_bytes"] >= sample["gpu_allocated_bytes"]
    assert sample["gpu_peak_bytes"] - before < estimate.total_bytes
    del loaded
    torch.cuda.empty_cache()


def test_refusal_counts_free_gpu_memory(installed_home):
    free, _total = torch.cuda.mem_get_info()
    entries_beyond_free = free // estimate_memory(None, "cuda", "none", None, tokens=1).kv_bytes_per_entry + 1
    with pytest.raises(ResourceError, match=r"of GPU memory \(.*GB free: "):
        check_fits(estimate_memory(None, "cuda", "none", None, tokens=int(entries_beyond_free)), "cuda")


def test_cuda_out_of_memory_becomes_a_resource_error():
    _free, total = torch.cuda.mem_get_info()
    with (
        pytest.raises(ResourceError, match="^CUDA ran out of memory while testing"),
        out_of_memory_as_resource_error("testing", "cuda"),
    ):
        torch.empty(int(total * 2), dtype=torch.uint8, device="cuda")
    torch.cuda.empty_cache()
