"""``sepsum adapt``: teach a model's separators to carry their segments (SepLLM self-distillation, LoRA)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app import paths
from app.errors import Cancelled, DocumentError, ModelError

if TYPE_CHECKING:
    from sepllm_core.adapt import ExperimentOptions

ADAPTED_SUFFIX = "-sepllm"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt", help="post-train a model for the SepLLM cache (LoRA self-distillation on plain text)",
        description="Train a LoRA adapter so the model under the SepLLM attention pattern (initial tokens, "
                    "separators, a local window) matches its own full-attention outputs. The adapter is "
                    "registered as a model named MODEL-sepllm.")
    parser.add_argument("model", metavar="MODEL", help="registered model name or model folder")
    parser.add_argument("--text", nargs="+", required=True, type=Path, metavar="FILE",
                        help="plain-text files to train on (a Gutenberg header is skipped)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per training sequence (default 1024)")
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per step (default 1)")
    parser.add_argument("--local", type=int, default=128, help="local window of the SepLLM mask (default 128)")
    parser.add_argument("--plain-local", type=int, default=0, metavar="N",
                        help="local window of the mask on plain-text rows when recall rows are mixed in "
                             "(default 0: --local); a wider one holds the perplexity")
    parser.add_argument("--initial", type=int, default=4, help="initial tokens always visible (default 4)")
    parser.add_argument("--separators", choices=("default", "sentence"), default="default",
                        help="separator set: punctuation + line breaks (default), or sentence enders only "
                             "(sparser: a bounded cache then reaches further back; use the same set at inference)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default 2e-4)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument("--recall-share", type=float, default=0.0, metavar="F",
                        help="share of training sequences with synthetic facts planted and asked at the end "
                             "(teaches separators to carry early facts; default 0: plain text only)")
    parser.add_argument("--answer-weight", type=float, default=20.0, metavar="W",
                        help="loss weight of the answer tokens in those sequences (default 20)")
    parser.add_argument("--first-value-lm-weight", type=float, default=0.0, metavar="W",
                        help="weight of the LM loss on the first token of each answer value, the one that needs "
                             "the fact (default 0)")
    parser.add_argument("--recall-min-distance", type=int, default=0, metavar="N",
                        help="plant every fact at least N tokens before the questions; above --local it forces "
                             "answers to go through separators (default 0: anywhere)")
    parser.add_argument("--recall-open-values", action="store_true",
                        help="recall facts use made-up values (names, numbers, codes) instead of closed lists, "
                             "so the model cannot learn to answer from a few hundred known values")
    parser.add_argument("--recall-open-share", type=float, default=1.0, metavar="F",
                        help="with --recall-open-values, the share of recall sequences with made-up values; the "
                             "rest use the closed lists (default 1)")
    parser.add_argument("--init-adapter", type=Path, default=None, metavar="DIR",
                        help="start from this adapter's LoRA weights (same --rank) instead of a fresh LoRA; "
                             "the teacher is still the base model")
    parser.add_argument("--recall-questions", type=int, default=0, metavar="N",
                        help="questions per recall sequence (default 0: 1 to 4)")
    parser.add_argument("--route-weight", type=float, default=0.0, metavar="W",
                        help="weight of a loss that makes some upper-layer head attend each answer's fact separator "
                             "(sdpa plus the routed rows' probabilities; default 0)")
    parser.add_argument("--full-answer-weight", type=float, default=0.0, metavar="W",
                        help="weight of a KL term that keeps the adapted model under FULL attention close to the "
                             "base model on the answer tokens of recall sequences (a second forward on those rows; "
                             "default 0: off)")
    parser.add_argument("--experiment", action="append", default=[], metavar="NAME=VALUE",
                        help="a research option the shipped recipe does not use (repeatable): "
                             + ", ".join(EXPERIMENT_HELP))
    parser.add_argument("--lr-warmup", type=int, default=20, help="warm-up steps of the learning rate (default 20)")
    parser.add_argument("--lr-final", type=float, default=0.1, metavar="F",
                        help="the cosine decay ends at this fraction of --lr (default 0.1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default 0: torch's choice)")
    parser.add_argument("--holdout", type=float, default=0.1,
                        help="fraction at the end of each text kept out of training (default 0.1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the training rows (default 0); change it when continuing from --init-adapter")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute activations in backward (less memory, ~30 %% slower; for 1B+ models)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: adapters/MODEL-sepllm in the data folder)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--merge", action="store_true",
                        help="also save a merged full model next to the adapter and register that instead")
    parser.add_argument("--name", default=None, help="registry name of the result (default MODEL-sepllm)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps")
    parser.add_argument("--dtype", default="auto", help="auto | bf16 | fp16 | fp32")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from app.engine import registry
    from app.engine.models import load_model
    from sepllm_core.adapt import (
        ADAPT_META,
        AdaptConfig,
        AdaptDone,
        AdaptStep,
        CheckpointSaved,
        adapt,
        attach_lora,
        read_texts,
        split_tokens,
    )

    config = AdaptConfig(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size, local=args.local,
                         plain_local=args.plain_local,
                         initial=args.initial, lr=args.lr, lora_r=args.rank, lora_alpha=2 * args.rank,
                         holdout_fraction=args.holdout,
                         recall_share=args.recall_share, answer_weight=args.answer_weight,
                         warmup_steps=args.lr_warmup,
                         first_value_lm_weight=args.first_value_lm_weight,
                         recall_min_distance=args.recall_min_distance,
                         recall_questions=args.recall_questions, route_weight=args.route_weight,
                         recall_open_values=args.recall_open_values,
                         full_answer_weight=args.full_answer_weight,
                         lr_final=args.lr_final, recall_open_share=args.recall_open_share,
                         init_adapter=str(args.init_adapter) if args.init_adapter else "",
                         checkpoint_every=args.checkpoint_every, seed=args.seed,
                         gradient_checkpointing=args.gradient_checkpointing, separators=args.separators,
                         experiment=experiment_options(args.experiment))
    try:
        config.validate()
    except ValueError as exc:
        raise ModelError(f"sepsum adapt: {exc}") from exc
    try:
        texts = read_texts(args.text)
    except (OSError, ValueError) as exc:
        raise DocumentError(f"{exc}: pass readable plain-text files with --text") from exc
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)

    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    name = args.name or loaded.name + ADAPTED_SUFFIX
    out = args.out or paths.models_dir().parent / "adapters" / name
    if (out / "checkpoint").exists() and not args.resume:
        raise ModelError(f"{out} already holds a checkpoint: pass --resume to continue it or choose another --out")
    recall = f", {config.recall_share:.0%} recall sequences" if config.recall_share > 0 else ""
    print(f"adapting {loaded.name} on {loaded.device} ({loaded.dtype}): {config.steps} steps of "
          f"{config.batch_size}×{config.seq_len} tokens, window {config.local}{recall}, into {out}", file=sys.stderr)
    train, _ = split_tokens(texts, loaded.tokenizer, config.holdout_fraction)
    longest = max(int(t.numel()) for t in train)
    if longest < config.seq_len:
        raise DocumentError(f"the longest training text has {longest} tokens (after holding out "
                            f"{config.holdout_fraction:.0%}), fewer than --seq-len {config.seq_len}: "
                            "pass longer texts or a smaller --seq-len")

    model = attach_lora(loaded.model, config)
    cancel = threading.Event()
    bar = ProgressBar(sys.stderr)
    done: AdaptDone | None = None
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        for event in adapt(model, loaded.tokenizer, train, config, out, resume=args.resume,
                           base_model=loaded.name, cancel=cancel):
            if isinstance(event, AdaptStep):
                bar.show(event)
            elif isinstance(event, CheckpointSaved):
                bar.note(f"checkpoint at step {event.step}")
            elif isinstance(event, AdaptDone):
                done = event
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.finish()
    if done is None or done.stopped_by == "cancelled":
        raise Cancelled(f"adaptation stopped at step {done.steps_done if done else 0}; "
                        f"the checkpoint is in {out}: rerun with --resume to continue")

    entry_path, fmt = out, "adapter"
    if args.merge:
        merged = out / "merged"
        _save_merged(model, loaded.tokenizer, merged)
        shutil.copyfile(out / ADAPT_META, merged / ADAPT_META)  # the separator set travels with the weights
        entry_path, fmt = merged, "safetensors"
    registry.add(registry.ModelEntry(
        name=name, path=str(entry_path), source="folder" if args.merge else "adapter", format=fmt,
        notes={"base": loaded.name, "base_path": str(loaded.path), "adapter": str(out),
               "method": "sepllm-self-distillation", "local": config.local, "initial": config.initial,
               "separators": config.separators, "recall_share": config.recall_share}))
    last = done.history[-1] if done.history else {}
    print(json.dumps({"name": name, "adapter": str(out), "merged": str(entry_path) if args.merge else None,
                      "steps": done.steps_done, "final_kl": last.get("kl")}))
    return 0


EXPERIMENT_HELP = (
    "lm_weight=W (LM loss added to KL)", "answer_lm_weight=W (LM loss on answer tokens)",
    "recall_same_kind=true (one kind of fact per recall sequence)",
    "route_from=F (the route loss counts layers from this fraction of the depth; default 0.5)",
    "target_modules=k_proj,v_proj (modules that get LoRA; default all-linear)",
)


def experiment_options(items: list[str]) -> ExperimentOptions:
    """``ExperimentOptions`` from ``--experiment NAME=VALUE`` items; ModelError names a bad one."""
    from dataclasses import fields, replace

    from sepllm_core.adapt import ExperimentOptions

    options = ExperimentOptions()
    known = {f.name: f for f in fields(ExperimentOptions)}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise ModelError(f"sepsum adapt: --experiment {item!r} is not NAME=VALUE with NAME one of "
                             f"{', '.join(known)}")
        value: object
        default = getattr(options, name)
        try:
            if isinstance(default, bool):
                if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = text.strip().lower() in ("true", "1", "yes")
            elif isinstance(default, float):
                value = float(text)
            else:
                names = [part.strip() for part in text.split(",") if part.strip()]
                value = "all-linear" if names in ([], ["all-linear"]) else names
        except ValueError as exc:
            raise ModelError(f"sepsum adapt: --experiment {item!r}: {text!r} is not a value for {name} "
                             f"(default {default!r})") from exc
        options = replace(options, **{name: value})
    return options


def _save_merged(peft_model, tokenizer, folder: Path) -> None:
    """Fold the adapter into the base weights and save a plain model folder (safetensors + tokenizer)."""
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


class ProgressBar:
    """``[#####·····] 120/300 KL 0.0312 · 410 tok/s · ETA 6 min`` redrawn in place on a terminal.

    When the stream is not a terminal, one plain line is written every 10 % of the run.
    """

    WIDTH = 24

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = stream.isatty()
        self.last_decile = -1
        self.started = time.monotonic()

    def show(self, step) -> None:
        filled = int(self.WIDTH * step.step / step.steps)
        eta = "" if step.eta_s is None else f" · ETA {_duration(step.eta_s)}"
        answer = "" if getattr(step, "answer_kl", None) is None else f" · answer KL {step.answer_kl:.3f}"
        text = (f"[{'#' * filled}{'·' * (self.WIDTH - filled)}] {step.step}/{step.steps} "
                f"KL {step.kl:.4f}{answer} · {step.tokens_per_s:,.0f} tok/s{eta}")
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            decile = 10 * step.step // step.steps
            if decile == self.last_decile:
                return
            self.last_decile = decile
            self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if not self.tty:
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.write(f"done in {_duration(time.monotonic() - self.started)}\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
