"""CUDA checks for the device machine: VRAM of a bounded vs a full cache, 4-bit loading, speed.

Usage (on a CUDA machine, repository root, default model installed in $SEPSUM_HOME):
    python -m benchmarks.gpu_checks --book PATH --tokens 32768 --out results.json

Runs side by side in one process: the same document through the full cache, the SepLLM cache
and the recent window, recording torch.cuda peak memory above the weights, KV bytes held,
prefill and decode tokens/s; then loads the model in 4-bit (bitsandbytes nf4) and compares its
next-token logits with bf16. Works on CPU too with small --tokens (for checking the script).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device: str) -> int:
    if device != "cuda":
        return 0
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def _peak(device: str) -> int:
    return torch.cuda.max_memory_allocated() if device == "cuda" else 0


def run_cache(loaded, ids: list[int], config, device: str, new_tokens: int) -> dict:
    from sepllm_core.events import Done
    from sepllm_core.generate import SamplingConfig, Session

    base = _peak_reset(device)
    session = Session(loaded.model, loaded.tokenizer, config)
    for _ in session.feed(ids):
        pass
    _sync(device)
    prefill_peak = _peak(device) - base
    done = None
    for event in session.generate(new_tokens, sampling=SamplingConfig()):
        if isinstance(event, Done):
            done = event
    _sync(device)
    stats = session.stats()
    return {
        "policy": config.policy,
        "max_entries": config.max_entries if config.bounded else None,
        "tokens": len(ids),
        "gpu_peak_above_weights_bytes": _peak(device) - base,
        "gpu_peak_prefill_bytes": prefill_peak,
        "kv_bytes_peak": stats["kv_bytes_peak"],
        "kv_bytes_full_equivalent": stats["kv_bytes_full_equivalent"],
        "kv_entries_peak": stats["kv_entries_peak"],
        "prefill_tokens_per_s": round(stats["prefill_tokens_per_s"], 1),
        "decode_tokens_per_s": round(stats["decode_tokens_per_s"], 1),
        "stopped_by": done.stopped_by if done else None,
        "sample": (done.text if done else "")[:160],
    }


def check_4bit(device: str, prompt: str) -> dict:
    from app.engine.models import load_model

    result: dict = {}
    base = _peak_reset(device)
    bf16 = load_model(None, device=device, quant="none")
    result["bf16_weights_bytes"] = (torch.cuda.memory_allocated() - base) if device == "cuda" else bf16.weights_bytes
    ids = bf16.tokenizer(prompt, return_tensors="pt")["input_ids"].to(bf16.model.device)
    with torch.inference_mode():
        ref = bf16.model(ids).logits[0, -1].float().cpu()
    del bf16
    base = _peak_reset(device)
    started = time.perf_counter()
    q4 = load_model(None, device=device, quant="4bit")
    result["nf4_load_seconds"] = round(time.perf_counter() - started, 2)
    result["nf4_weights_bytes"] = (torch.cuda.memory_allocated() - base) if device == "cuda" else q4.weights_bytes
    with torch.inference_mode():
        out = q4.model(ids.to(q4.model.device)).logits[0, -1].float().cpu()
    result["nf4_vs_bf16_logit_correlation"] = round(float(torch.corrcoef(torch.stack([ref, out]))[0, 1]), 5)
    result["nf4_same_top1"] = bool(ref.argmax() == out.argmax())
    result["nf4_linear_class"] = type(q4.model.model.layers[0].mlp.up_proj).__name__
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, required=True)
    parser.add_argument("--tokens", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-full-above", type=int, default=65536, help="no full-cache run beyond this")
    parser.add_argument("--only", choices=["caches", "4bit"], default=None, help="run one part only")
    args = parser.parse_args(argv)

    from app import offline

    offline.enforce()
    from app.engine.models import load_model
    from sepllm_core.config import CacheConfig

    report: dict = {"torch": torch.__version__, "device": args.device, "runs": []}
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    text = args.book.read_text(encoding="utf-8", errors="replace")
    loaded = load_model(None, device=args.device, quant="none")
    all_ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    configs = [CacheConfig.full(), CacheConfig.balanced(), CacheConfig.window(2048)]
    for n in args.tokens if args.only != "4bit" else []:
        ids = (all_ids * (n // max(1, len(all_ids)) + 1))[:n]
        for config in configs:
            if config.policy == "full" and n > args.skip_full_above:
                continue
            try:
                row = run_cache(loaded, ids, config, args.device, args.new_tokens)
            except torch.OutOfMemoryError as exc:  # pragma: no cover - GPU only
                row = {"policy": config.policy, "tokens": n, "error": f"CUDA out of memory: {exc}"[:200]}
            report["runs"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "sample"}), flush=True)
    del loaded
    if args.only == "caches":
        args.out and args.out.write_text(json.dumps(report, indent=2))
        return 0
    try:
        report["quant_4bit"] = check_4bit(args.device, text[:4000])
    except Exception as exc:  # report, don't hide: the JSON says what failed
        report["quant_4bit"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(report["quant_4bit"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
