"""The training loop: a LoRA student under the SepLLM mask distils its full-attention self, yielding events."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sepllm_core.adapt.config import AdaptConfig
from sepllm_core.adapt.data import training_batch
from sepllm_core.adapt.io import load_adapter_weights, load_checkpoint, save_adapter, save_checkpoint
from sepllm_core.adapt.losses import answer_target, full_answer_kl, weighted_distill_loss
from sepllm_core.adapt.mask import separator_lookup, student_mask
from sepllm_core.adapt.route import ROUTE_ATTENTION, captured_route_loss, use_route_attention
from sepllm_core.training_mask import to_attention_mask

log = logging.getLogger(__name__)

MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class AdaptStep:
    """One optimizer step done; losses are this step's batch means."""

    step: int
    steps: int
    loss: float
    kl: float
    lm: float
    lr: float
    tokens_per_s: float
    eta_s: float | None
    #: Mean KL on the answer tokens of this step's recall rows (None when it had none).
    answer_kl: float | None = None


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class AdaptDone:
    """The run ended: the adapter is in ``out_dir`` (or only a checkpoint when cancelled)."""

    out_dir: str
    steps_done: int
    stopped_by: str  # "steps" | "cancelled"
    history: list[dict[str, float]] = field(default_factory=list)


AdaptEvent = AdaptStep | CheckpointSaved | AdaptDone


def _lora_config(config: AdaptConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=config.experiment.target_modules, task_type="CAUSAL_LM")



def lr_at(step: int, config: AdaptConfig) -> float:
    """Linear warm-up, then cosine decay to ``lr_final`` (default 10 %) of ``lr`` at the last step."""
    warmup = min(config.warmup_steps, max(config.steps // 10, 1))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(config.steps - warmup, 1)
    final = config.lr_final
    return config.lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def attach_lora(model: Any, config: AdaptConfig) -> Any:
    """Wrap ``model`` in a trainable LoRA ``PeftModel`` (the base weights are frozen)."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft probes a deprecated transformers property; the warning says nothing to our users.
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, _lora_config(config))
    if config.gradient_checkpointing:
        peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        peft_model.enable_input_require_grads()
    return peft_model


def adapt(model: Any, tokenizer: Any, train_docs: Sequence[torch.Tensor], config: AdaptConfig,
          out_dir: str | os.PathLike[str], *, resume: bool = False, base_model: str = "",
          cancel: threading.Event | None = None, is_separator: torch.Tensor | None = None,
          ) -> Iterator[AdaptEvent]:
    """Train a LoRA adapter so the model under the SepLLM mask matches itself under full attention.

    Parameters
    ----------
    model
        A ``PeftModel`` from :func:`attach_lora`, or a plain causal LM (wrapped here). Its attention
        must be ``sdpa`` or ``eager`` (4D masks).
    tokenizer
        The model's tokenizer (for the separator table and recall sequences).
    train_docs : list of LongTensor [n_i]
        Training token streams (see :func:`split_tokens`).
    config : AdaptConfig
    out_dir
        Gets ``checkpoint/`` during the run and the final adapter (``adapter_model.safetensors``,
        ``adapter_config.json``, ``sepllm_adapt.json``, ``history.csv``) at the end.
    resume
        Continue from ``out_dir/checkpoint`` when it exists.
    cancel
        Checked before every step; when set, a checkpoint is written and the run stops.

    Yields
    ------
    AdaptStep, CheckpointSaved, AdaptDone
    """
    from peft import PeftModel

    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(model, PeftModel):
        model = attach_lora(model, config)
    table = separator_lookup(tokenizer, config.separators) if is_separator is None else is_separator
    device = next(model.parameters()).device
    compute_dtype = next(p for p in model.parameters() if not p.requires_grad).dtype
    if config.route_weight > 0:
        use_route_attention(model)  # sdpa, plus the probabilities of the routed rows
    attn = getattr(model.config, "_attn_implementation", None) or "sdpa"
    if attn == ROUTE_ATTENTION:
        attn = "sdpa"  # same masks as sdpa
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    start_step, history = load_checkpoint(model, optimizer, out) if resume else (0, [])
    if resume and start_step:
        log.info("resuming %s at step %d", out, start_step)
    elif config.init_adapter:
        load_adapter_weights(model, config.init_adapter, "pass an adapter trained with the same --rank and targets")
        log.info("starting from the adapter in %s", config.init_adapter)
    model.train(config.gradient_checkpointing)
    tokens_per_step = config.batch_size * config.seq_len
    started = time.perf_counter()
    step = start_step
    for step in range(start_step, config.steps):
        if cancel is not None and cancel.is_set():
            path = save_checkpoint(model, optimizer, step, history, out)
            yield CheckpointSaved(step=step, path=str(path))
            yield AdaptDone(out_dir=str(out), steps_done=step, stopped_by="cancelled", history=history)
            return
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = training_batch(train_docs, tokenizer, config, step)
        input_ids, weights, answer_mask = batch.input_ids.to(device), batch.weights, batch.answer_mask
        routed = config.route_weight > 0 and batch.routes is not None
        with torch.no_grad(), model.disable_adapter():
            teacher_logits = model(input_ids=input_ids, use_cache=False).logits  # (B, T, V)
        mask = to_attention_mask(student_mask(input_ids, table, config, answer_mask), attn, compute_dtype)
        route_attention = None
        if routed and batch.routes is not None:
            student, route, route_attention = captured_route_loss(
                model, batch.routes.to(device), config.experiment.route_from, input_ids=input_ids, attention_mask=mask,
                use_cache=False)
        else:
            student = model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        parts = weighted_distill_loss(teacher_logits, student.logits, input_ids, config,
                                      None if weights is None else weights.to(device),
                                      None if answer_mask is None else answer_mask.to(device))
        loss, kl, lm = parts.loss, parts.kl, parts.lm
        if route_attention is not None:
            loss = loss + config.route_weight * route
        del student
        answer_kl = None if parts.answer_kl is None else float(parts.answer_kl)
        target = None
        if config.full_answer_weight > 0 and answer_mask is not None:
            target = answer_target(teacher_logits, answer_mask.to(device))
        del teacher_logits
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        full_kl = None
        if target is not None:
            # A second, unmasked student forward after the first backward: one graph in memory at a time.
            full_term = full_answer_kl(model, input_ids, target)
            (config.full_answer_weight * full_term).backward()
            full_kl = float(full_term.detach())
            loss = loss.detach() + config.full_answer_weight * full_kl
            del full_term, target
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        done = step + 1
        elapsed = time.perf_counter() - started
        rate = (done - start_step) * tokens_per_step / max(elapsed, 1e-9)
        eta = (config.steps - done) * tokens_per_step / rate if rate > 0 else None
        record = {"step": done, "loss": float(loss.detach()), "kl": float(kl), "lm": float(lm), "lr": lr,
                  "seconds": round(elapsed, 3)}
        if answer_kl is not None:
            record["answer_kl"] = answer_kl
            record["answer_lm"] = float(parts.answer_lm) if parts.answer_lm is not None else math.nan
            record["first_value_lm"] = (float(parts.first_value_lm) if parts.first_value_lm is not None
                                        else math.nan)
        if route_attention is not None:
            record["route_attention"] = float(route_attention)
        if full_kl is not None:
            record["full_answer_kl"] = full_kl
        history.append(record)
        yield AdaptStep(step=done, steps=config.steps, loss=record["loss"], kl=float(kl), lm=float(lm), lr=lr,
                        tokens_per_s=rate, eta_s=eta, answer_kl=answer_kl)
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
            path = save_checkpoint(model, optimizer, done, history, out)
            yield CheckpointSaved(step=done, path=str(path))
    done = max(config.steps, start_step)
    path = save_checkpoint(model, optimizer, done, history, out)
    yield CheckpointSaved(step=done, path=str(path))
    save_adapter(model, out, config, base_model=base_model, history=history,
                 separators=int(table.sum()))
    yield AdaptDone(out_dir=str(out), steps_done=done, stopped_by="steps", history=history)

