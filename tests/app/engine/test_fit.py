"""Hardware fit of the catalog: the same numbers as the pre-run estimate, verdicts, the recommended pick."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from app.cli import main
from app.engine import catalog, fit
from app.engine.estimate import estimate_memory, preflight_tokens
from app.engine.hardware import Machine, probe
from app.request import cache_config as cache_config_for
from app.summarize.events import SummaryRequest
from tests.conftest import refuse_network

GB = 1_000_000_000


def _cache(cache: str = "sepsum", **budget):
    return cache_config_for(SummaryRequest(paths=[], cache=cache if cache != "sepsum" else "sepllm",
                                           cache_budget=budget))


def test_installed_model_gets_exactly_the_pre_run_estimate(installed_home, monkeypatch):
    """The catalog row of the installed default model equals what ``load_model_for`` checks before a run."""
    from app.engine import estimate as estimate_module
    from app.summarize import pipeline

    seen = []

    class Stop(Exception):
        pass

    def capture(estimate, device=None):
        seen.append(estimate)
        raise Stop

    monkeypatch.setattr(estimate_module, "check_fits", capture)
    machine = Machine(ram_total=64 * GB, ram_free=32 * GB, disk_free=100 * GB)
    for quant in fit.QUANTS:
        request = SummaryRequest(paths=[], device="cpu", quant=quant, cache_budget={"max_entries": 1024})
        config = cache_config_for(request)
        with pytest.raises(Stop):
            pipeline.load_model_for(request)
        row = fit.evaluate(machine, config, models=[catalog.get("smollm2-135m-instruct")])[0]
        assert row.installed
        assert row.fits[quant].cpu == seen[-1]  # the whole estimate, field by field
    assert seen[0].kv_entries == 1024 and seen[0].tokens == preflight_tokens(_cache(max_entries=1024))


def test_catalog_numbers_give_the_estimate_of_the_downloaded_files(isolated_home, default_model_dir):
    """Before a download the estimate comes from the catalog; it equals the one read from the real files."""
    entry = catalog.get("smollm2-135m-instruct")
    machine = Machine(ram_total=64 * GB, ram_free=32 * GB, disk_free=100 * GB)
    config = _cache()
    row = fit.evaluate(machine, config, models=[entry], use_registry=False, cpu_dtype="bf16")[0]
    assert not row.installed
    for quant in fit.QUANTS:
        from_files = estimate_memory(str(default_model_dir), "cpu", quant, config, tokens=preflight_tokens(config),
                                     dtype="bf16", decode_weights="bf16", four_bit_source=False)
        from_catalog = row.fits[quant].cpu
        assert from_catalog.total_bytes == from_files.total_bytes
        assert from_catalog.weights_bytes_by_quant == from_files.weights_bytes_by_quant


def test_verdicts_follow_free_gpu_memory_then_free_ram(isolated_home):
    qwen7 = [catalog.get("qwen2.5-7b-instruct")]
    config = _cache()

    def verdicts(**machine):
        rows = fit.evaluate(Machine(disk_free=100 * GB, **machine), config, models=qwen7, use_registry=False,
                            cpu_dtype="bf16")
        return {q: f.verdict for q, f in rows[0].fits.items()}

    assert verdicts(ram_total=64 * GB, ram_free=40 * GB, gpu="cuda", gpu_total=24 * GB, gpu_free=23 * GB) == {
        "none": fit.GPU, "8bit": fit.GPU, "4bit": fit.GPU}
    assert verdicts(ram_total=32 * GB, ram_free=20 * GB, gpu="cuda", gpu_total=8 * GB, gpu_free=7.5 * GB) == {
        "none": fit.CPU, "8bit": fit.CPU, "4bit": fit.GPU}
    assert verdicts(ram_total=8 * GB, ram_free=6 * GB) == {"none": fit.TOO_LARGE, "8bit": fit.TOO_LARGE,
                                                           "4bit": fit.TOO_LARGE}
    mps = verdicts(ram_total=32 * GB, ram_free=20 * GB, gpu="mps", gpu_total=22 * GB, gpu_free=21 * GB)
    assert mps == {"none": fit.GPU, "8bit": fit.CPU, "4bit": fit.CPU}  # bitsandbytes has no MPS kernels


def test_gpu_estimates_use_the_gpu_runtime_and_dtype(isolated_home):
    row = fit.evaluate(Machine(ram_total=8 * GB, ram_free=6 * GB, disk_free=GB, gpu="cuda", gpu_total=12 * GB,
                               gpu_free=11 * GB), _cache(), models=[catalog.get("qwen2.5-3b-instruct")],
                       use_registry=False, cpu_dtype="fp32")[0]
    gpu, cpu = row.fits["none"].gpu, row.fits["none"].cpu
    assert gpu.device == "cuda" and gpu.dtype == "bf16" and cpu.dtype == "fp32"
    assert cpu.weights_bytes == 2 * gpu.weights_bytes
    assert row.fits["none"].estimate() is gpu


def test_recommendation_prefers_the_gpu_and_the_largest_model_with_headroom(isolated_home):
    config = _cache()
    models = list(catalog.load().values())
    gpu_machine = Machine(ram_total=16 * GB, ram_free=10 * GB, disk_free=100 * GB, gpu="cuda", gpu_total=12 * GB,
                          gpu_free=11.5 * GB)
    rows = fit.evaluate(gpu_machine, config, models=models, use_registry=False, cpu_dtype="bf16")
    pick = fit.recommend(gpu_machine, rows)
    assert pick.device == "cuda"
    assert pick.estimate.total_bytes <= fit.HEADROOM * gpu_machine.gpu_free
    assert not pick.model.thinking
    biggest_fitting = max(r.model.parameters for r in rows if not r.model.thinking for f in r.fits.values()
                           if f.gpu and f.gpu.total_bytes <= fit.HEADROOM * gpu_machine.gpu_free)
    assert pick.model.parameters == biggest_fitting
    # the lightest quantization loss that fits that model
    lighter = [q for q in fit.QUANTS[:fit.QUANTS.index(pick.quant)]]
    row = next(r for r in rows if r.model.name == pick.model.name)
    assert all(row.fits[q].gpu.total_bytes > fit.HEADROOM * gpu_machine.gpu_free for q in lighter)

    laptop = Machine(ram_total=8 * GB, ram_free=5 * GB, disk_free=100 * GB)
    small = fit.recommend(laptop, fit.evaluate(laptop, config, models=models, use_registry=False, cpu_dtype="bf16"))
    assert small.device == "cpu" and small.estimate.total_bytes <= fit.HEADROOM * laptop.ram_free
    tiny = Machine(ram_total=GB, ram_free=GB // 10, disk_free=GB)
    assert fit.recommend(tiny, fit.evaluate(tiny, config, models=models, use_registry=False, cpu_dtype="bf16")) is None


def test_probe_reads_this_machine():
    machine = probe()
    assert 0 < machine.ram_free <= machine.ram_total and machine.disk_free > 0
    import torch

    assert (machine.gpu == "cuda") == torch.cuda.is_available()


def test_cli_catalog_lists_every_model_with_verdicts(installed_home, capsys):
    assert main(["models", "catalog"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("This machine: RAM ")
    for name in catalog.load():
        assert name in out
    assert "smollm2-135m-instruct [installed]" in out
    assert "Recommended: " in out and "sepsum models download " in out
    assert out.count(" CPU") + out.count(" GPU") + out.count(" -") >= 3 * len(catalog.load())


def test_cli_catalog_json_matches_the_estimator(installed_home, capsys):
    assert main(["models", "catalog", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cache"]["policy"] == "sepllm" and data["cache"]["tokens"] == data["cache"]["max_entries"]
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == set(catalog.load())
    default = by_name["smollm2-135m-instruct"]
    assert default["installed"] and default["languages"] == ["en"]
    config = _cache()
    expected = estimate_memory("smollm2-135m-instruct", "cpu", "4bit", config, tokens=preflight_tokens(config),
                               decode_weights="auto")
    assert default["fits"]["4bit"]["cpu"]["total_bytes"] == expected.total_bytes
    assert data["recommended"]["name"] in by_name
    assert Path(data["machine"]["label"]).name == "this machine"


def test_catalog_and_list_never_touch_the_network(installed_home, capsys, monkeypatch):
    refuse_network(monkeypatch)
    assert main(["models", "catalog"]) == 0
    assert main(["models", "list"]) == 0
    assert "smollm2-135m-instruct" in capsys.readouterr().out


def test_models_too_big_for_the_disk_are_named(installed_home, capsys, monkeypatch):
    from app.engine import hardware

    real = hardware.probe
    monkeypatch.setattr(hardware, "probe", lambda *a: dataclasses.replace(real(*a), disk_free=2 * GB))
    assert main(["models", "catalog"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Not enough free disk"))
    assert "qwen2.5-7b-instruct" in line and "smollm2-360m-instruct" not in line


def test_thinking_models_are_never_the_pick(isolated_home):
    machine = Machine(ram_total=64 * GB, ram_free=40 * GB, disk_free=100 * GB)
    models = [catalog.get("qwen3-1.7b"), catalog.get("qwen2.5-1.5b-instruct")]
    assert models[0].parameters > models[1].parameters
    rows = fit.evaluate(machine, _cache(), models=models, use_registry=False, cpu_dtype="bf16")
    assert fit.recommend(machine, rows).model.name == "qwen2.5-1.5b-instruct"
    assert fit.recommend(machine, rows[:1]) is None


def test_models_info_sizes_a_catalog_model_before_its_download(installed_home, capsys):
    assert main(["models", "info", "qwen2.5-0.5b-instruct"]) == 0
    out = capsys.readouterr().out
    assert "not downloaded: 'sepsum models download qwen2.5-0.5b-instruct' fetches Qwen/Qwen2.5-0.5B-Instruct" in out
    assert "parameters:    494.0 M" in out and "licence:       apache-2.0" in out
    assert "languages:     en, zh, fr" in out and "memory 4bit:" in out
    assert main(["models", "info", "smollm2-135m-instruct"]) == 0  # installed: read from its files
    out = capsys.readouterr().out
    assert "path:" in out and "models/smollm2-135m-instruct" in out and "catalog:       HuggingFaceTB/" in out
