"""The pipeline on a CUDA GPU: the bounded cache holds less GPU memory than the full one."""

import threading

import pytest

from app.summarize import pipeline
from app.summarize.events import SummaryDone, SummaryRequest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda_loaded(default_model_dir):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from app.engine.models import load_model

    return load_model(str(default_model_dir), device="cuda", quant="none")


def _summary(loaded, path, cache):
    request = SummaryRequest(paths=[path], mode="single", cache=cache, length="short", max_new_tokens=32,
                             cache_budget={"max_entries": 512, "separators": 64, "local": 128, "chunk": 256})
    (done,) = [e for e in pipeline.summarize(request, threading.Event(), loaded=loaded)
               if isinstance(e, SummaryDone)]
    return done


def test_bounded_cache_on_cuda_uses_less_gpu_memory(cuda_loaded, sample_path):
    bounded = _summary(cuda_loaded, sample_path, "sepllm")
    full = _summary(cuda_loaded, sample_path, "full")
    assert bounded.summary and full.summary
    assert bounded.stats["device"].startswith("cuda") and bounded.stats["peak_gpu_bytes"] > 0
    assert bounded.stats["kv_bytes_peak"] < 0.5 * full.stats["kv_bytes_peak"]
    assert bounded.stats["peak_gpu_bytes"] < full.stats["peak_gpu_bytes"]
