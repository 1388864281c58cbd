"""Which catalog models fit a machine: the pre-run memory estimate per model and quantization, a verdict, a pick.

Installed models are estimated from their files exactly as the pre-run check does
(:func:`app.engine.estimate.estimate_memory` with the same cache and token count); models not yet
downloaded from the catalog's config numbers (:func:`app.engine.catalog.model_info`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.engine import catalog
from app.engine.catalog import CatalogModel
from app.engine.estimate import (
    FOUR_BIT_SOURCES,
    MemoryEstimate,
    estimate_resolved,
    model_info_for,
    preflight_tokens,
)
from app.engine.hardware import Machine

log = logging.getLogger(__name__)

GPU, CPU, TOO_LARGE = "fits on GPU", "fits on CPU", "too large"
QUANTS = ("none", "8bit", "4bit")
QUANT_LABELS = {"none": "bf16", "8bit": "8-bit", "4bit": "4-bit"}
#: The recommended pick leaves this share of free memory unused (other programs, fragmentation).
HEADROOM = 0.8


@dataclass(frozen=True)
class QuantFit:
    """One model at one quantization: its estimates on the GPU (None without one) and the CPU."""

    quant: str
    gpu: MemoryEstimate | None
    cpu: MemoryEstimate
    verdict: str

    def estimate(self) -> MemoryEstimate:
        """The estimate behind the verdict (the GPU's when it fits there)."""
        return self.gpu if self.verdict == GPU and self.gpu is not None else self.cpu


@dataclass(frozen=True)
class ModelFit:
    """A catalog model on one machine, with a :class:`QuantFit` per quantization."""

    model: CatalogModel
    installed: bool
    fits: dict[str, QuantFit]


@dataclass(frozen=True)
class Recommendation:
    model: CatalogModel
    quant: str
    device: str  # "cuda" | "mps" | "cpu"
    estimate: MemoryEstimate

    def describe(self) -> str:
        from app.engine.estimate import format_bytes

        where = {"cuda": "the GPU", "mps": "the Apple GPU"}.get(self.device, "the CPU")
        return (f"{self.model.name} at {QUANT_LABELS[self.quant]} on {where} "
                f"(needs {format_bytes(self.estimate.total_bytes)})")


def verdict(machine: Machine, gpu: MemoryEstimate | None, cpu: MemoryEstimate) -> str:
    """GPU when the GPU estimate fits its free memory, else CPU when the CPU one fits free RAM."""
    if gpu is not None and gpu.total_bytes <= machine.gpu_free:
        return GPU
    if cpu.total_bytes <= machine.ram_free:
        return CPU
    return TOO_LARGE


def _installed_name(model: CatalogModel) -> str | None:
    """The registry name under which this catalog model is installed, if it is."""
    from pathlib import Path

    from app.engine import registry

    entries = registry.load()
    for name, entry in entries.items():
        notes = entry.notes or {}
        same = name == model.name or notes.get("repo") == model.repo
        if same and entry.source != "adapter" and Path(entry.path).exists():
            return name
    return None


def _estimates(model: CatalogModel, machine: Machine, quant: str, cache_config, tokens: int,
               decode_weights: str, installed: str | None, cpu_dtype: str):
    gpu = None
    int4 = decode_weights == "int4"  # auto adds the copy only to 4-bit sources (GGUF), never to a download
    if installed is not None:  # the files are here: the pre-run check's numbers (estimate_memory's steps)
        from app.engine import registry

        name, info = model_info_for(installed)
        int4 = int4 or (decode_weights == "auto" and registry.resolve(installed).source in FOUR_BIT_SOURCES)
    else:
        name, info = model.name, catalog.model_info(model)
    cpu = estimate_resolved(name, info, "cpu", cpu_dtype, quant, cache_config, tokens, int4_copy=int4)
    if machine.gpu and not (machine.gpu == "mps" and quant != "none"):  # bitsandbytes has no MPS kernels
        gpu = estimate_resolved(name, info, machine.gpu, machine.gpu_dtype, quant, cache_config, tokens,
                                int4_copy=int4)
    return gpu, cpu


def evaluate(machine: Machine, cache_config, *, decode_weights: str = "auto",
             models: list[CatalogModel] | None = None, use_registry: bool = True,
             cpu_dtype: str | None = None) -> list[ModelFit]:
    """Every catalog model (or ``models``) at bf16 / 8-bit / 4-bit on ``machine``.

    ``cache_config`` is the run's cache (``app.request.cache_config``); the token count
    is the pre-run check's (:func:`preflight_tokens`). ``use_registry=False`` sizes every model from
    the catalog (another machine, e.g. the README's table); ``cpu_dtype`` defaults to this CPU's.
    """
    if cpu_dtype is None:
        from app.engine import devices

        cpu_dtype = devices.dtype_name(devices.choose_dtype("cpu"))
    tokens = preflight_tokens(cache_config)
    rows = []
    for model in models if models is not None else list(catalog.load().values()):
        installed = _installed_name(model) if use_registry else None
        fits = {}
        for quant in QUANTS:
            gpu, cpu = _estimates(model, machine, quant, cache_config, tokens, decode_weights, installed,
                                  cpu_dtype)
            fits[quant] = QuantFit(quant, gpu, cpu, verdict(machine, gpu, cpu))
        rows.append(ModelFit(model, installed is not None, fits))
    return rows


def recommend(machine: Machine, rows: list[ModelFit]) -> Recommendation | None:
    """The largest model that fits with :data:`HEADROOM`, preferring the GPU, then lighter quantization.

    On the GPU the largest model at any quantization wins (a 7B at 4-bit writes better than a 3B in
    bf16); on the CPU the same, but only when no model fits the GPU.
    """
    def best(device_kind: str) -> Recommendation | None:
        found: Recommendation | None = None
        for row in rows:
            if row.model.thinking:  # its <think> block would land in the summary
                continue
            for quant in QUANTS:  # lightest quantization loss first
                fit = row.fits[quant]
                estimate = fit.gpu if device_kind == "gpu" else fit.cpu
                limit = machine.gpu_free if device_kind == "gpu" else machine.ram_free
                if estimate is None or estimate.total_bytes > HEADROOM * limit:
                    continue
                if found is None or row.model.parameters > found.model.parameters:
                    device = machine.gpu if device_kind == "gpu" and machine.gpu else "cpu"
                    found = Recommendation(row.model, quant, device, estimate)
                break  # the lightest-loss quantization that fits this model
        return found

    return (best("gpu") if machine.gpu else None) or best("cpu")


def cell(fit: QuantFit) -> str:
    """``3.1 GB GPU`` / ``6.7 GB CPU`` / ``15.8 GB -`` : the memory behind the verdict and where it runs."""
    from app.engine.estimate import format_bytes

    where = {GPU: "GPU", CPU: "CPU", TOO_LARGE: "-"}[fit.verdict]
    return f"{format_bytes(fit.estimate().total_bytes)} {where}"


def table_lines(rows: list[ModelFit], recommendation: Recommendation | None = None) -> list[str]:
    """A plain-text table: one line per model, a column per quantization (memory and verdict)."""
    header = ["model", "params", "context", "languages", "licence", *(QUANT_LABELS[q] for q in QUANTS)]
    body = []
    for row in rows:
        model = row.model
        mark = " *" if recommendation is not None and recommendation.model.name == model.name else ""
        langs = ",".join(model.languages[:4]) + ("…" if len(model.languages) > 4 else "")
        licence = model.licence + (" (gated)" if model.gated else "")
        name = model.name + (" [installed]" if row.installed else "") + mark
        body.append([name, f"{model.parameters / 1e9:.2f} B", f"{model.trained_context // 1024}k", langs, licence,
                     *(cell(row.fits[q]) for q in QUANTS)])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *body]]


def as_json(machine: Machine, rows: list[ModelFit], pick: Recommendation | None, cache_config) -> dict:
    """The machine, the cache sized for, and every model's estimates and verdicts (bytes), for tools."""
    from dataclasses import asdict

    def estimate(e: MemoryEstimate | None) -> dict | None:
        if e is None:
            return None
        return {"device": e.device, "dtype": e.dtype, "total_bytes": e.total_bytes, "weights_bytes": e.weights_bytes,
                "kv_bytes": e.kv_bytes, "kv_entries": e.kv_entries, "runtime_bytes": e.overhead_bytes}

    return {
        "machine": asdict(machine),
        "cache": {"policy": cache_config.policy, "max_entries": cache_config.max_entries if cache_config.bounded
                  else None, "tokens": preflight_tokens(cache_config)},
        "models": [{"name": row.model.name, "repo": row.model.repo, "installed": row.installed,
                    "gated": row.model.gated, "languages": list(row.model.languages),
                    "fits": {q: {"verdict": f.verdict, "gpu": estimate(f.gpu), "cpu": estimate(f.cpu)}
                             for q, f in row.fits.items()}} for row in rows],
        "recommended": None if pick is None else {"name": pick.model.name, "quant": pick.quant,
                                                  "device": pick.device, "total_bytes": pick.estimate.total_bytes},
    }
