"""CUDA (device machine only): the catalog's fit on a real GPU, a 4-bit bounded-cache run within its estimate,
a downloaded model on the GPU, and an out-of-memory refusal that names the fix in the window's words."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from app.engine import catalog, fit
from app.engine.estimate import check_fits, estimate_memory, preflight_tokens
from app.engine.hardware import probe
from app.engine.memory import reset_gpu_peak
from app.errors import ResourceError
from app.request import cache_config as cache_config_for
from app.summarize import pipeline
from app.summarize.events import SummaryDone, SummaryRequest

pytestmark = pytest.mark.gpu
SAMPLE = Path(__file__).resolve().parents[3] / "resources" / "sample.md"


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (run 'make test-gpu' on a GPU machine)")


def test_fit_on_this_gpu_is_the_pre_run_estimate(installed_home):
    machine = probe()
    assert machine.gpu == "cuda" and 0 < machine.gpu_free <= machine.gpu_total
    config = cache_config_for(SummaryRequest(paths=[]))
    row = fit.evaluate(machine, config, models=[catalog.get("smollm2-135m-instruct")])[0]
    for quant in fit.QUANTS:
        expected = estimate_memory("smollm2-135m-instruct", "cuda", quant, config, tokens=preflight_tokens(config),
                                   decode_weights="auto")
        assert row.fits[quant].gpu == expected
        assert row.fits[quant].verdict == fit.GPU
    pick = fit.recommend(machine, fit.evaluate(machine, config))
    assert pick is not None and pick.device == "cuda"


@pytest.mark.parametrize("quant", ["4bit", "none"])
def test_bounded_cache_run_on_cuda_stays_within_its_estimate(installed_home, quant):
    request = SummaryRequest(paths=[SAMPLE], device="cuda", quant=quant, length="short", max_new_tokens=32,
                             cache_budget={"max_entries": 512, "initial": 4, "separators": 128, "local": 256})
    config = cache_config_for(request)
    estimate = estimate_memory(None, "cuda", quant, config, tokens=preflight_tokens(config))
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    reset_gpu_peak()
    events = list(pipeline.summarize(request, threading.Event()))
    done = [e for e in events if isinstance(e, SummaryDone)]
    assert done and done[0].text.strip(), events[-3:]
    stats = done[0].stats
    assert stats["device"].startswith("cuda") and stats["quant"] == quant
    assert stats["input_tokens"] > 1024  # longer than the cache: it was bounded
    assert stats["kv_entries_peak"] <= 512 + config.chunk_size
    assert torch.cuda.max_memory_allocated() - before <= estimate.total_bytes


def test_gpu_refusal_names_the_fix(installed_home):
    free, _total = torch.cuda.mem_get_info()
    per_entry = estimate_memory(None, "cuda", "none", None, tokens=1).kv_bytes_per_entry
    with pytest.raises(ResourceError) as caught:
        check_fits(estimate_memory(None, "cuda", "none", None, tokens=int(free // per_entry) + 1), "cuda")
    pytest.importorskip("PySide6")
    from app.gui.error_advice import for_window

    advice = for_window(str(caught.value))
    assert "--" not in advice.split(": ", 1)[1] and "Get models" in advice
