"""One short GPU run: adapt the default model by SepLLM self-distillation and measure it before and after.

Two halves. ``prepare`` runs here (no GPU): it copies the shared books into ``.cache/adapt-data/``
and splits what the device needs into two carry folders under 64 MiB each (the 98 MB default-model
GGUF in two parts plus wheels). ``run`` runs on the device (``benchmarks/adapt_gpu.sh``): it
rebuilds the bf16 default model from the GGUF exactly as ``sepsum models install-default`` does,
evaluates it, trains for a fixed time budget, evaluates again and writes into ``--out``:
``results.json`` (written after every stage), the adapter (``adapter_model.safetensors``,
``adapter_config.json``, ``sepllm_adapt.json``), ``history.csv`` and ``curve.png``.

    .venv/bin/python -m benchmarks.adapt_gpu prepare
    .venv/bin/python -m benchmarks.adapt_gpu run --out /tmp/o --allow-cpu --steps 2 --quick   # logic check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / ".cache" / "adapt-data"
XFER_DIR = REPO / ".cache" / "adapt-xfer"
STAGE_DIRS = (XFER_DIR / "a", XFER_DIR / "b", Path("/tmp/sepsum-stage"), REPO / ".dev")
BOOKS = ("gutenberg_2701_Moby_Dick_Melville.txt", "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt")
WHEELS_A = ("transformers-5.24.0-py3-none-any.whl",)
WHEELS_B = ("peft-0.21.2-py3-none-any.whl", "gguf-0.19.0-py3-none-any.whl",
            # transformers checks regex >= 2025.10.22 at import; the device image's version is unknown.
            "regex-2026.11.19-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl")
WHEEL_DIRS = (REPO / ".whl", REPO / ".cache" / "adapt-wheels")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CARRY_LIMIT = 64 * 2**20
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[adapt-gpu {time.perf_counter() - STARTED:6.1f}s] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[adapt-gpu] FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


# ----------------------------------------------------------------------------------------- prepare (here)


def prepare(args: argparse.Namespace) -> int:
    """Copy the books and split the GGUF + wheels into two carry folders; print the run commands."""
    books = Path(args.books)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for name in BOOKS:
        if not (books / name).is_file():
            fail(f"{books / name} is missing: pass --books DIR holding {', '.join(BOOKS)}")
        shutil.copyfile(books / name, DATA_DIR / name)
    gguf_parts = Path(args.gguf_parts)
    parts = sorted(gguf_parts.glob("gguf_part_*"))
    if not parts:
        fail(f"no GGUF parts gguf_part_* in {gguf_parts}: split the default model's GGUF "
             f"({GGUF_NAME}) with 'split -b 50000000 {GGUF_NAME} gguf_part_' there")
    gguf = b"".join(p.read_bytes() for p in parts)
    # Re-split so both calls carry about the same: call a also carries transformers (13.5 MB).
    cut = len(gguf) // 2 - 5_000_000
    for folder, chunk, part_name, names in ((XFER_DIR / "a", gguf[:cut], "gguf_part_aa", WHEELS_A),
                                            (XFER_DIR / "b", gguf[cut:], "gguf_part_ab", WHEELS_B)):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / part_name).write_bytes(chunk)
        for name in names:
            found = [d / name for d in WHEEL_DIRS if (d / name).is_file()]
            if not found:
                fail(f"wheel {name} is missing from {[str(d) for d in WHEEL_DIRS]}: pip download --no-deps "
                     "--only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 it there")
            _link(found[0], folder / name)
    sizes = {"a": _size(XFER_DIR / "a"), "b": _size(XFER_DIR / "b") + _size(DATA_DIR)}
    for key, size in sizes.items():
        say(f"carry {key}: {size / 2**20:.1f} MiB (+ the working tree; limit 64 MiB)")
        if size > CARRY_LIMIT - 2 * 2**20:
            fail(f"carry {key} is {size / 2**20:.1f} MiB, too close to the 64 MiB limit")
    print("call 1: carry ['.cache/adapt-xfer/a']\n"
          "  command: mkdir -p /tmp/sepsum-stage && cp .cache/adapt-xfer/a/* /tmp/sepsum-stage/ && ls -l /tmp/sepsum-stage")
    print("call 2 (within 30 s): carry ['.cache/adapt-xfer/b', '.cache/adapt-data']\n"
          "  command: bash benchmarks/adapt_gpu.sh")
    return 0


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------------------- run (device)


def obtain_model(model_dir: Path) -> Path:
    """The bf16 default model: ``model_dir`` if present, else rebuilt from the two GGUF parts."""
    if (model_dir / "model.safetensors").is_file():
        say(f"model: {model_dir}")
        return model_dir
    from app.engine.default_model import GGUF_BYTES, GGUF_SHA256, convert_gguf

    parts: dict[str, Path] = {}
    for folder in STAGE_DIRS:
        for part in sorted(folder.glob("gguf_part_*")) if folder.is_dir() else []:
            parts.setdefault(part.name, part)
    if sorted(parts) != ["gguf_part_aa", "gguf_part_ab"]:
        fail(f"the default model is not here: no {model_dir}/model.safetensors and GGUF parts found "
             f"{sorted(parts) or 'none'} in {[str(d) for d in STAGE_DIRS]}; carry '.cache/adapt-xfer/a' in "
             "call 1 and '.cache/adapt-xfer/b' in call 2 (benchmarks/adapt_gpu.py prepare)")
    target_dir = Path("/tmp/sepsum-gguf")
    target_dir.mkdir(exist_ok=True)
    gguf = target_dir / GGUF_NAME
    digest = hashlib.sha256()
    with open(gguf, "wb") as out:
        for name in sorted(parts):
            data = parts[name].read_bytes()
            digest.update(data)
            out.write(data)
    if gguf.stat().st_size != GGUF_BYTES or digest.hexdigest() != GGUF_SHA256:
        fail(f"reassembled GGUF is {gguf.stat().st_size} bytes, sha256 {digest.hexdigest()[:12]}…: "
             f"expected {GGUF_BYTES} bytes, {GGUF_SHA256[:12]}…")
    built = Path("/tmp/sepsum-model")
    say("converting the GGUF to bf16 safetensors (as the default install does)")
    convert_gguf(gguf, built)
    return built


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "func"}}

    def save() -> None:
        results["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
        (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")

    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.allow_cpu:
        fail("no CUDA device visible (torch.cuda.is_available() is False); pass --allow-cpu for a logic check")
    import peft

    results["env"] = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                      "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    say(f"env {results['env']}")
    if transformers.__version__ != "5.24.0":
        say(f"WARNING: transformers {transformers.__version__}, the project pins 5.24.0 (sepllm_core.cache follows "
            "its cache API); install the carried wheel")
    texts_paths = sorted(Path(args.data).glob("*.txt"))
    if not texts_paths:
        fail(f"no training text in {args.data}: run 'python -m benchmarks.adapt_gpu prepare' here and carry "
             "'.cache/adapt-data'")
    # Fail before any heavy work if a needed module is missing.
    from benchmarks.adapt_eval import evaluate, write_curve
    from sepllm_core.adapt import (
        AdaptConfig,
        AdaptDone,
        AdaptStep,
        adapt,
        attach_lora,
        distill_loss,
        read_texts,
        sample_batch,
        separator_lookup,
        split_tokens,
    )
    from sepllm_core.training_mask import sepllm_mask, to_attention_mask

    model_dir = obtain_model(Path(args.model_dir))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(device)
    model.eval()
    say(f"loaded {model_dir} on {device}")
    train, heldout = split_tokens(read_texts(texts_paths), tokenizer, args.holdout)
    results["data"] = {"files": [p.name for p in texts_paths], "train_tokens": sum(int(t.numel()) for t in train),
                       "heldout_tokens": sum(int(t.numel()) for t in heldout)}
    table = separator_lookup(tokenizer, args.separators)
    seeds = [int(s) for s in args.seeds.split(",")]
    eval_options = dict(budget=args.budget, recall_tokens=args.recall_tokens, seeds=seeds,
                        window_len=args.window_len, max_windows=args.max_windows)
    save()

    say("evaluating before adaptation")
    results["before"] = evaluate(model, tokenizer, heldout, table, **eval_options)
    if args.compare_default_table and args.separators != "default":
        from benchmarks.adapt_eval import recall_by_policy

        text = tokenizer.decode(max(heldout, key=lambda t: t.numel()).tolist())
        results["before"]["recall_sepllm_default_separators"] = recall_by_policy(
            model, tokenizer, text, separator_lookup(tokenizer, "default"), budget=args.budget,
            tokens=args.recall_tokens, seeds=seeds, policies=("sepllm",))["sepllm"]
    say(f"before: {json.dumps(_brief(results['before']))}")
    save()

    config = AdaptConfig(steps=max(args.steps or 1, 1), seq_len=args.seq_len, batch_size=args.batch_size,
                         local=args.local, initial=4, lr=args.lr, lora_r=args.rank, lora_alpha=2 * args.rank,
                         warmup_steps=20, checkpoint_every=0, separators=args.separators)
    model = attach_lora(model, config)
    if not args.steps:
        # Time three forward/backward passes (no optimizer step: LoRA B stays zero) to fit the budget.
        attn = model.config._attn_implementation
        batch = sample_batch(train, config.batch_size, config.seq_len, seed=123, step=0).to(device)
        timings = []
        for _ in range(3):
            _sync(device)
            tick = time.perf_counter()
            with torch.no_grad(), model.disable_adapter():
                teacher = model(input_ids=batch, use_cache=False).logits
            mask = to_attention_mask(sepllm_mask(batch, table, initial=4, local=config.local), attn, dtype)
            loss = distill_loss(teacher, model(input_ids=batch, attention_mask=mask, use_cache=False).logits,
                                batch, config)[0]
            loss.backward()
            model.zero_grad(set_to_none=True)
            del teacher, loss
            _sync(device)
            timings.append(time.perf_counter() - tick)
        step_s = min(timings[1:]) * 1.08  # + optimizer step and bookkeeping
        config.steps = max(10, int(args.train_seconds / step_s))
        results["calibration"] = {"step_s": round(step_s, 4), "steps": config.steps,
                                  "peak_gib": _peak_gib(device)}
        say(f"calibrated {step_s:.3f} s/step -> {config.steps} steps in {args.train_seconds:.0f} s")
    config.validate()
    results["train_config"] = {k: v for k, v in vars(config).items()}
    save()

    say(f"training {config.steps} steps of {config.batch_size}x{config.seq_len} tokens")
    train_started = time.perf_counter()
    done: AdaptDone | None = None
    for event in adapt(model, tokenizer, train, config, out / "adapter", base_model="smollm2-135m-instruct",
                       is_separator=table):
        if isinstance(event, AdaptStep) and (event.step % max(config.steps // 20, 1) == 0 or event.step <= 3):
            say(f"step {event.step}/{event.steps} kl {event.kl:.4f} lm {event.lm:.3f} "
                f"{event.tokens_per_s:,.0f} tok/s")
        elif isinstance(event, AdaptDone):
            done = event
    assert done is not None
    train_s = time.perf_counter() - train_started
    history = done.history
    results["training"] = {"seconds": round(train_s, 1), "steps": done.steps_done,
                           "tokens": done.steps_done * config.batch_size * config.seq_len,
                           "tokens_per_s": round(done.steps_done * config.batch_size * config.seq_len / train_s),
                           "s_per_step": round(train_s / max(done.steps_done, 1), 4),
                           "kl_first10": _mean([h["kl"] for h in history[:10]]),
                           "kl_last10": _mean([h["kl"] for h in history[-10:]]),
                           "peak_gib": _peak_gib(device)}
    say(f"trained: {json.dumps(results['training'])}")
    save()
    for name in ("adapter_model.safetensors", "adapter_config.json", "sepllm_adapt.json", "history.csv"):
        shutil.copyfile(out / "adapter" / name, out / name)
    shutil.rmtree(out / "adapter")
    write_curve(history, out)

    say("evaluating after adaptation (adapter merged)")
    model = model.merge_and_unload()
    model.eval()
    results["after"] = evaluate(model, tokenizer, heldout, table, **eval_options)
    say(f"after: {json.dumps(_brief(results['after']))}")
    save()
    say(f"done; files in {out}: {sorted(p.name for p in out.iterdir())}")
    return 0


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    brief: dict[str, Any] = {"ppl": {k: round(v, 3) for k, v in result["perplexity"].items()}}
    for policy, recall in result.get("recall", {}).items():
        brief[policy] = f"early {recall['recall_early_count']} late {recall['recall_late_count']}"
    return brief


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 5) if values else None


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="here: copy books, split GGUF + wheels into carry folders")
    prep.add_argument("--books", default=str(REPO.parent / "shared" / "data" / "books"))
    prep.add_argument("--gguf-parts", default=str(REPO / ".dev"))
    prep.set_defaults(func=prepare)
    go = sub.add_parser("run", help="on the device: train and evaluate")
    go.add_argument("--out", default=os.environ.get("OUT", "out/adapt-gpu"))
    go.add_argument("--data", default=str(DATA_DIR))
    go.add_argument("--model-dir", default=str(REPO / ".cache" / "sepsum-home" / "models" / "smollm2-135m-instruct"))
    go.add_argument("--train-seconds", type=float, default=120.0, help="training time budget (calibrated)")
    go.add_argument("--steps", type=int, default=0, help="fixed step count instead of --train-seconds")
    go.add_argument("--seq-len", type=int, default=2048)
    go.add_argument("--batch-size", type=int, default=8)
    go.add_argument("--local", type=int, default=256)
    go.add_argument("--rank", type=int, default=16)
    go.add_argument("--lr", type=float, default=4e-4)
    go.add_argument("--separators", choices=("default", "sentence"), default="sentence")
    go.add_argument("--holdout", type=float, default=0.1)
    go.add_argument("--budget", type=int, default=1024)
    go.add_argument("--recall-tokens", type=int, default=6144)
    go.add_argument("--seeds", default="0,1,2")
    go.add_argument("--window-len", type=int, default=4096)
    go.add_argument("--max-windows", type=int, default=8)
    go.add_argument("--compare-default-table", action=argparse.BooleanOptionalAction, default=True)
    go.add_argument("--allow-cpu", action="store_true", help="logic check without a GPU")
    go.add_argument("--quick", action="store_true", help="tiny sizes for a CPU logic check")
    go.set_defaults(func=run)
    args = parser.parse_args(argv)
    if getattr(args, "quick", False):
        args.seq_len, args.batch_size, args.local, args.budget = 128, 1, 32, 64
        args.recall_tokens, args.seeds, args.window_len, args.max_windows = 384, "0", 256, 1
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
