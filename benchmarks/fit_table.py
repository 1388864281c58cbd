"""The README's "Choosing a model" table: which catalog models fit a few typical machines, from the estimator.

``python -m benchmarks.fit_table [--json docs/benchmarks/fit_table.json]`` prints a Markdown table:
per machine and model, the memory the pre-run check would ask for (weights + the default bounded
cache + runtime) at the lightest quantization that fits, and where. Nothing is measured: the numbers
are :func:`app.engine.fit.evaluate` for machines described here, sized from the catalog.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.engine import catalog, fit
from app.engine.estimate import format_bytes
from app.engine.hardware import Machine
from app.request import cache_config as cache_config_for
from app.summarize.events import SummaryRequest

GB = 1_000_000_000
#: Typical machines. Free memory is what a user has with a browser open: about 3 GB of an 8 GB
#: laptop's RAM taken; a display holds about 0.5 GB of a desktop GPU.
MACHINES = (
    Machine(ram_total=8 * GB, ram_free=5 * GB, disk_free=100 * GB, label="8 GB laptop, CPU only"),
    Machine(ram_total=16 * GB, ram_free=10 * GB, disk_free=100 * GB, gpu="cuda", gpu_name="6 GB GPU",
            gpu_total=6 * GB, gpu_free=int(5.5 * GB), label="6 GB GPU, 16 GB RAM"),
    Machine(ram_total=32 * GB, ram_free=24 * GB, disk_free=100 * GB, gpu="cuda", gpu_name="12 GB GPU",
            gpu_total=12 * GB, gpu_free=int(11.5 * GB), label="12 GB GPU, 32 GB RAM"),
)


def best_fit(row: fit.ModelFit) -> tuple[str, fit.QuantFit] | None:
    """The lightest-loss quantization on the GPU if any fits there, else on the CPU; None when none fits."""
    for verdict in (fit.GPU, fit.CPU):
        for quant in fit.QUANTS:
            if row.fits[quant].verdict == verdict:
                return quant, row.fits[quant]
    return None


def table(cache_config) -> tuple[list[str], dict]:
    models = list(catalog.load().values())
    results = {}
    picks = {}
    for machine in MACHINES:
        rows = fit.evaluate(machine, cache_config, models=models, use_registry=False, cpu_dtype="bf16")
        results[machine.label] = rows
        picks[machine.label] = fit.recommend(machine, rows)
    header = "| model | " + " | ".join(m.label for m in MACHINES) + " |"
    lines = [header, "|" + "---|" * (len(MACHINES) + 1)]
    raw: dict = {"cache": {"policy": cache_config.policy, "max_entries": cache_config.max_entries},
                 "machines": {}, "models": {}}
    for index, model in enumerate(models):
        cells = []
        for machine in MACHINES:
            row = results[machine.label][index]
            found = best_fit(row)
            pick = picks[machine.label]
            if pick is not None and pick.model.name == model.name:  # the pick keeps headroom: maybe lighter
                where = "CPU" if pick.device == "cpu" else "GPU"
                cells.append(f"**{fit.QUANT_LABELS[pick.quant]} on {where}, "
                             f"{format_bytes(pick.estimate.total_bytes)} ★**")
            elif found is None:
                cells.append("too large")
            else:
                quant, quant_fit = found
                where = "GPU" if quant_fit.verdict == fit.GPU else "CPU"
                cells.append(f"{fit.QUANT_LABELS[quant]} on {where}, {format_bytes(quant_fit.estimate().total_bytes)}")
            raw["models"].setdefault(model.name, {})[machine.label] = {
                q: {"verdict": f.verdict, "gpu_bytes": f.gpu.total_bytes if f.gpu else None,
                    "cpu_bytes": f.cpu.total_bytes} for q, f in row.fits.items()}
        gated = " (gated)" if model.gated else ""
        lines.append(f"| {model.label}{gated} | " + " | ".join(cells) + " |")
    for machine in MACHINES:
        pick = picks[machine.label]
        raw["machines"][machine.label] = {
            "ram_free": machine.ram_free, "gpu_free": machine.gpu_free,
            "recommended": None if pick is None else {"model": pick.model.name, "quant": pick.quant,
                                                      "device": pick.device, "bytes": pick.estimate.total_bytes}}
    return lines, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the raw estimates here")
    args = parser.parse_args(argv)
    cache_config = cache_config_for(SummaryRequest(paths=[]))  # the default: SepLLM cache, default budget
    lines, raw = table(cache_config)
    print("\n".join(lines))
    print(f"\nEstimates for the default {cache_config.policy} cache of {cache_config.max_entries} entries; "
          "a cell is the lightest quantization that fits (GPU first); ★ = the recommended pick (the largest model "
          "within 80 % of free memory, GPU first). Free memory assumed: "
          + "; ".join(f"{m.label}: {format_bytes(m.ram_free)} RAM" + (f", {format_bytes(m.gpu_free)} GPU"
                                                                        if m.gpu else "") for m in MACHINES))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
