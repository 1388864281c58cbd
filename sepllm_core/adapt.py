"""SepLLM post-training by self-distillation: a LoRA student under the SepLLM mask matches its full-attention self.

The teacher is the same model with its adapter disabled and full causal attention (no grad, one
forward per batch); the student is the model with a LoRA adapter (``peft``) under
:func:`sepllm_core.training_mask.sepllm_mask`. The loss is KL(teacher || student) over next-token
distributions, optionally plus the LM loss. Because the student matches its own full-attention
outputs, no labelled data is needed and instruction following is kept.

With ``recall_share > 0`` a share of the training rows are recall sequences
(:mod:`sepllm_core.recall_data`): plain text with synthetic facts planted at random depths and
questions about some of them at the end, whose answer tokens weigh ``answer_weight`` times more
in the loss. They give the student a reason to condense each segment into its separator. With
``full_answer_weight > 0`` the recall rows also run the student under full attention, and its KL
to the teacher on the answer tokens keeps the (merged) adapter from hurting full-attention copying.

``adapt(...)`` is a generator of events (:class:`AdaptStep`, :class:`CheckpointSaved`,
:class:`AdaptDone`); the CLI draws a progress bar from them. Checkpoints hold the adapter, the
optimizer state and the step, and a run resumes from them with ``resume=True``.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import math
import os
import shutil
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sepllm_core.training_mask import sepllm_mask, to_attention_mask

log = logging.getLogger(__name__)

ADAPT_META = "sepllm_adapt.json"
HISTORY_CSV = "history.csv"
CHECKPOINT_DIR = "checkpoint"
TRAINER_STATE = "trainer_state.pt"
#: The SepLLM paper's separator characters (a token is a separator when it is made only of these).
SEPARATOR_CHARS = ".,?!;: \t\n"
#: Named separator sets: (characters that end a separator token, whether line breaks count).
SEPARATOR_SETS: dict[str, tuple[str | None, bool]] = {"default": (None, True), "sentence": (".!?", False)}


@dataclass
class AdaptConfig:
    """Hyper-parameters of one adaptation run (saved with the adapter)."""

    steps: int = 300
    seq_len: int = 1024
    batch_size: int = 1
    lr: float = 2e-4
    warmup_steps: int = 20
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: str | list[str] = "all-linear"
    initial: int = 4
    local: int = 128
    kl_weight: float = 1.0
    lm_weight: float = 0.0
    temperature: float = 1.0
    holdout_fraction: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0
    gradient_checkpointing: bool = False
    max_grad_norm: float = 1.0
    save_dtype: str = "bfloat16"
    #: Separator set: ``"default"`` (``sepllm_core.separators``: punctuation and line breaks) or
    #: ``"sentence"`` (sentence enders ``. ! ?`` only: ~6x sparser, so a bounded cache spans more text).
    separators: str = "default"
    #: Share of training rows that are recall sequences (facts planted, asked at the end); 0 = plain text only.
    recall_share: float = 0.0
    #: Loss weight of answer value tokens in recall sequences (other tokens weigh 1).
    answer_weight: float = 20.0
    #: Weight of the LM loss on answer value tokens only (labels are the planted values).
    answer_lm_weight: float = 0.0
    #: Weight of the LM loss on the FIRST token of each answer value only: the one that needs the
    #: fact (later tokens of a multi-token value follow from the first).
    first_value_lm_weight: float = 0.0
    #: Recall rows: every fact ends at least this many tokens before the questions (0: anywhere).
    recall_min_distance: int = 0
    #: Recall rows: all facts of a row are of one kind, so an answer must pick its fact by subject.
    recall_same_kind: bool = False
    #: Recall rows: questions per row (0: 1 to 4).
    recall_questions: int = 0
    #: Recall rows: values made up per fact (names, numbers, codes) instead of the closed lists.
    recall_open_values: bool = False
    #: Weight of the route loss (:func:`route_loss`): at each first value token, the best head of the
    #: upper layers should attend its fact's separator. The model trains on :data:`ROUTE_ATTENTION`
    #: (sdpa, plus the probabilities of the routed query rows only).
    route_weight: float = 0.0
    #: The route loss counts layers from this fraction of the depth on (0.5: upper half; 0: all).
    route_from: float = 0.5
    #: Weight of KL(teacher || student under FULL attention) on the answer tokens of recall rows: a
    #: second student forward without the SepLLM mask (adapter on), so that the merged adapter keeps
    #: full attention copying the value (0: off, no second forward).
    full_answer_weight: float = 0.0
    #: The learning rate's cosine decay ends at this fraction of ``lr`` (0.1: to a tenth).
    lr_final: float = 0.1
    #: With ``recall_open_values``, the share of recall rows whose values are made up; the rest use the
    #: closed lists (disjoint from the evaluation's), so one run learns both kinds.
    recall_open_share: float = 1.0
    #: Start from this adapter's LoRA weights (same rank and targets) instead of a fresh LoRA; the
    #: teacher is still the base model.
    init_adapter: str = ""
    #: Local window of the SepLLM mask on plain-text rows (0: ``local``). A wider one than the recall
    #: rows' keeps the adapter close to the base model where the evaluated cache holds many recent
    #: tokens (perplexity), while the narrow window of the recall rows forces facts through separators.
    plain_local: int = 0

    def validate(self) -> None:
        if self.steps < 1 or self.seq_len < 8 or self.batch_size < 1:
            raise ValueError(f"need steps >= 1, seq_len >= 8, batch_size >= 1 (got {self.steps}, "
                             f"{self.seq_len}, {self.batch_size})")
        if self.local < 1 or self.initial < 0:
            raise ValueError(f"need local >= 1 and initial >= 0 (got {self.local}, {self.initial})")
        for name, window in (("local", self.local), ("plain_local", self.plain_local)):
            if window >= self.seq_len:
                raise ValueError(f"{name} window {window} must be shorter than seq_len {self.seq_len}, "
                                 "or the student sees everything the teacher sees")
        if self.plain_local < 0:
            raise ValueError(f"plain_local must be >= 0 (0: the same as local), got {self.plain_local}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if self.separators not in SEPARATOR_SETS:
            raise ValueError(f"separators must be one of {', '.join(SEPARATOR_SETS)}, got {self.separators!r}")
        if self.kl_weight <= 0 and self.lm_weight <= 0 and self.answer_lm_weight <= 0 \
                and self.first_value_lm_weight <= 0:
            raise ValueError("kl_weight, lm_weight, answer_lm_weight or first_value_lm_weight must be positive")
        if not 0.0 <= self.recall_share <= 1.0:
            raise ValueError(f"recall_share must be in [0, 1], got {self.recall_share}")
        if self.answer_weight <= 0 or self.answer_lm_weight < 0 or self.first_value_lm_weight < 0:
            raise ValueError(f"need answer_weight > 0 and answer_lm_weight, first_value_lm_weight >= 0 (got "
                             f"{self.answer_weight}, {self.answer_lm_weight}, {self.first_value_lm_weight})")
        if self.route_weight < 0 or (self.route_weight > 0 and self.recall_share <= 0):
            raise ValueError(f"route_weight {self.route_weight} needs recall_share > 0 and must be >= 0")
        if not 0.0 <= self.route_from < 1.0:
            raise ValueError(f"route_from must be in [0, 1), got {self.route_from}")
        if self.full_answer_weight < 0 or (self.full_answer_weight > 0 and self.recall_share <= 0):
            raise ValueError(f"full_answer_weight {self.full_answer_weight} needs recall_share > 0 and must be >= 0")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ValueError(f"lr_final must be in [0, 1], got {self.lr_final}")
        if not 0.0 <= self.recall_open_share <= 1.0:
            raise ValueError(f"recall_open_share must be in [0, 1], got {self.recall_open_share}")
        if self.recall_min_distance < 0 or not 0 <= self.recall_questions <= 8:
            raise ValueError(f"need recall_min_distance >= 0 and recall_questions in 0..8 (got "
                             f"{self.recall_min_distance}, {self.recall_questions})")

    def recall_data_config(self) -> Any:
        """The :class:`sepllm_core.recall_data.RecallDataConfig` these settings describe."""
        from sepllm_core.recall_data import RecallDataConfig

        questions = {} if not self.recall_questions else {
            "min_questions": self.recall_questions, "max_questions": self.recall_questions,
            "min_facts": max(3, self.recall_questions), "max_facts": max(8, self.recall_questions)}
        return RecallDataConfig(answer_weight=self.answer_weight, min_distance=self.recall_min_distance,
                                same_kind=self.recall_same_kind, open_values=self.recall_open_values,
                                open_share=self.recall_open_share, **questions)


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


# ----------------------------------------------------------------------------------------- data


def strip_gutenberg(text: str) -> str:
    """Drop a Project Gutenberg header and licence footer, if present."""
    start = text.find("*** START OF")
    if start >= 0:
        line_end = text.find("\n", start)
        text = text[line_end + 1 :] if line_end >= 0 else ""
    end = text.find("*** END OF")
    return text[:end] if end >= 0 else text


def read_texts(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Read plain-text files (UTF-8, undecodable bytes replaced), without Gutenberg boilerplate.

    Raises
    ------
    FileNotFoundError, ValueError
        A file is missing, or holds no text.
    """
    texts = []
    for path in paths:
        text = strip_gutenberg(Path(path).read_text(encoding="utf-8", errors="replace"))
        if not text.strip():
            raise ValueError(f"{path} holds no text after its header: pass a plain-text file")
        texts.append(text)
    if not texts:
        raise ValueError("no text files given: pass at least one with --text")
    return texts


def split_tokens(texts: Sequence[str], tokenizer: Any, holdout_fraction: float
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Tokenize each text and split it: the first part trains, the last ``holdout_fraction`` is held out.

    Returns
    -------
    (train, heldout) : lists of LongTensor [n_i]
        One tensor per text; a held-out tensor may be empty when ``holdout_fraction`` is 0.
    """
    train, heldout = [], []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        ids_t = torch.tensor(ids, dtype=torch.long)
        cut = len(ids) - int(len(ids) * holdout_fraction)
        train.append(ids_t[:cut])
        heldout.append(ids_t[cut:])
    return train, heldout


def sample_batch(docs: Sequence[torch.Tensor], batch_size: int, seq_len: int, seed: int, step: int
                 ) -> torch.Tensor:
    """Random windows of ``seq_len`` tokens, drawn by document length; deterministic in (seed, step).

    Returns
    -------
    LongTensor [batch_size, seq_len]
    """
    usable = [d for d in docs if d.numel() >= seq_len]
    if not usable:
        longest = max((d.numel() for d in docs), default=0)
        raise ValueError(f"the training text is too short: {longest} tokens, need at least seq_len={seq_len}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    weights = torch.tensor([float(d.numel() - seq_len + 1) for d in usable])
    rows = []
    for _ in range(batch_size):
        doc = usable[int(torch.multinomial(weights, 1, generator=generator))]
        start = int(torch.randint(0, doc.numel() - seq_len + 1, (1,), generator=generator))
        rows.append(doc[start : start + seq_len])
    return torch.stack(rows)


@dataclass(frozen=True)
class TrainingBatch:
    """One step's rows; ``weights``, ``answer_mask`` and ``routes`` are None for plain text only.

    Attributes
    ----------
    input_ids : LongTensor [B, T]
    weights : FloatTensor [B, T] or None
    answer_mask : BoolTensor [B, T] or None
    routes : LongTensor [B, T] or None
        At the first token of each answer value, the index of its fact's separator; -1 elsewhere.
    """

    input_ids: torch.Tensor
    weights: torch.Tensor | None = None
    answer_mask: torch.Tensor | None = None
    routes: torch.Tensor | None = None


def training_batch(docs: Sequence[torch.Tensor], tokenizer: Any, config: AdaptConfig, step: int) -> TrainingBatch:
    """Plain-text rows mixed with recall rows (share ``config.recall_share``); deterministic in (seed, step)."""
    if config.recall_share <= 0:
        return TrainingBatch(sample_batch(docs, config.batch_size, config.seq_len, config.seed, step))
    from sepllm_core.recall_data import recall_rows

    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step + 500_009)
    recall_count = int((torch.rand(config.batch_size, generator=generator) < config.recall_share).sum())
    plain_rows = config.batch_size - recall_count
    if recall_count == 0:
        return TrainingBatch(sample_batch(docs, plain_rows, config.seq_len, config.seed, step))
    rows = recall_rows(docs, tokenizer, recall_count, config.seq_len, config.seed, step, config.recall_data_config())
    ids = torch.stack([r.input_ids for r in rows])
    weights = torch.stack([r.weights for r in rows])
    answers = torch.stack([r.answer_mask for r in rows])
    routes = torch.stack([r.routes() for r in rows])
    if plain_rows:
        plain = sample_batch(docs, plain_rows, config.seq_len, config.seed, step)
        ids = torch.cat([ids, plain])
        weights = torch.cat([weights, torch.ones(plain.shape, dtype=weights.dtype)])
        answers = torch.cat([answers, torch.zeros(plain.shape, dtype=torch.bool)])
        routes = torch.cat([routes, torch.full(plain.shape, -1, dtype=torch.long)])
    return TrainingBatch(ids, weights, answers, routes)


def sample_training_batch(docs: Sequence[torch.Tensor], tokenizer: Any, config: AdaptConfig, step: int
                          ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Plain-text rows mixed with recall rows (share ``config.recall_share``); deterministic in (seed, step).

    Returns
    -------
    (input_ids, weights, answer_mask)
        LongTensor [B, T]; FloatTensor [B, T] and BoolTensor [B, T], or both None when the batch
        is plain text only (every token weighs 1: the behaviour without recall rows).
    """
    batch = training_batch(docs, tokenizer, config, step)
    return batch.input_ids, batch.weights, batch.answer_mask


# ----------------------------------------------------------------------------------------- separators


def separator_lookup(tokenizer: Any, which: str = "default") -> torch.Tensor:
    """The separator table ``BoolTensor [vocab]`` for a named set (see ``SEPARATOR_SETS``).

    Built by ``sepllm_core.separators.separator_table`` when present; otherwise locally: a token is a
    separator when it is made only of the set's characters (and, for ``default``, line breaks).
    """
    chars, line_breaks = SEPARATOR_SETS[which]
    try:
        separators: Any = importlib.import_module("sepllm_core.separators")
    except ImportError:
        separators = None
    builder = getattr(separators, "separator_table", None)
    if builder is not None:
        kwargs: dict[str, Any] = {"line_breaks": line_breaks}
        if chars is not None:
            kwargs["chars"] = chars
        return builder(tokenizer, **kwargs).to(torch.bool)
    allowed = (chars or ".,?!;:") + (" \t\n" if line_breaks else " ")
    size = len(tokenizer)
    table = torch.zeros(size, dtype=torch.bool)
    for token_id in range(size):
        piece = tokenizer.decode([token_id])
        table[token_id] = bool(piece.strip(" ")) and all(ch in allowed for ch in piece)
    return table


# ----------------------------------------------------------------------------------------- loss


@dataclass(frozen=True)
class LossParts:
    """The training loss and its detached parts (``answer_*`` are None without answer tokens)."""

    loss: torch.Tensor
    kl: torch.Tensor
    lm: torch.Tensor
    answer_kl: torch.Tensor | None
    answer_lm: torch.Tensor | None
    #: LM loss on the first token of each answer value (None without answer tokens).
    first_value_lm: torch.Tensor | None = None


def weighted_distill_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor, input_ids: torch.Tensor,
                          config: AdaptConfig, weights: torch.Tensor | None = None,
                          answer_mask: torch.Tensor | None = None) -> LossParts:
    """KL(teacher || student) and LM loss per token, averaged with per-token weights.

    Parameters
    ----------
    teacher_logits, student_logits : Tensor [B, T, vocab]
    input_ids : LongTensor [B, T]
    weights : FloatTensor [B, T], optional
        Weight of predicting token ``i`` (the distribution at position ``i - 1``); the last
        position, which predicts past the sequence, weighs 1. None: every token weighs 1.
    answer_mask : BoolTensor [B, T], optional
        Answer tokens (recall rows): their mean KL and LM loss are reported, and the LM loss on
        them is added with ``config.answer_lm_weight``.

    Returns
    -------
    LossParts
        ``loss = kl_weight * kl + lm_weight * lm + answer_lm_weight * answer_lm
        + first_value_lm_weight * first_value_lm``.
    """
    temp = config.temperature
    teacher_logp = torch.log_softmax(teacher_logits.float() / temp, dim=-1)  # (B, T, V)
    student_logp = torch.log_softmax(student_logits.float() / temp, dim=-1)  # (B, T, V)
    kl_per_position = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1) * temp**2  # (B, T)
    del teacher_logp, student_logp
    ce = torch.nn.functional.cross_entropy(student_logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:],
                                           reduction="none")  # (B, T-1)
    if weights is None:
        kl, lm = kl_per_position.mean(), ce.mean()
    else:
        position_weights = torch.cat([weights[:, 1:], torch.ones_like(weights[:, :1])], dim=1).to(kl_per_position)
        kl = (kl_per_position * position_weights).sum() / position_weights.sum()
        target_weights = weights[:, 1:].to(ce)
        lm = (ce * target_weights).sum() / target_weights.sum()
    answer_kl = answer_lm = first_lm = None
    loss = config.kl_weight * kl + (config.lm_weight * lm if config.lm_weight > 0 else 0.0)
    if answer_mask is not None and bool(answer_mask[:, 1:].any()):
        targets = answer_mask[:, 1:]  # (B, T-1): position t predicts answer token t + 1
        answer_kl = kl_per_position[:, :-1][targets].mean()
        answer_lm = ce[targets].mean()
        first_lm = ce[targets & ~answer_mask[:, :-1]].mean()  # answer tokens whose predecessor is not one
        if config.answer_lm_weight > 0:
            loss = loss + config.answer_lm_weight * answer_lm
        if config.first_value_lm_weight > 0:
            loss = loss + config.first_value_lm_weight * first_lm
        answer_kl, answer_lm, first_lm = answer_kl.detach(), answer_lm.detach(), first_lm.detach()
    return LossParts(loss=loss, kl=kl.detach(), lm=lm.detach(), answer_kl=answer_kl, answer_lm=answer_lm,
                     first_value_lm=first_lm)


def distill_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor, input_ids: torch.Tensor,
                 config: AdaptConfig, weights: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL(teacher || student) per token (mean, or weighted mean) and the student's LM loss.

    Parameters
    ----------
    teacher_logits, student_logits : Tensor [B, T, vocab]
    input_ids : LongTensor [B, T]
    weights : FloatTensor [B, T], optional
        Per-token weights (see :func:`weighted_distill_loss`).

    Returns
    -------
    (loss, kl, lm) : scalar tensors; ``loss = kl_weight * kl + lm_weight * lm``.
    """
    parts = weighted_distill_loss(teacher_logits, student_logits, input_ids, config, weights)
    return parts.loss, parts.kl, parts.lm


@dataclass(frozen=True)
class AnswerTarget:
    """The teacher's distributions at the positions that predict answer tokens of the recall rows.

    Attributes
    ----------
    rows : LongTensor [R]
        Batch rows with at least one answer token.
    positions : LongTensor [P]
        Positions that predict an answer token in at least one of those rows (their union).
    picked : BoolTensor [R, P]
        Whether position ``positions[p]`` predicts an answer token in row ``rows[r]``.
    teacher_logp : FloatTensor [R, P, vocab]
        The teacher's log-probabilities there (fp32, at ``config.temperature``).
    """

    rows: torch.Tensor
    positions: torch.Tensor
    picked: torch.Tensor
    teacher_logp: torch.Tensor


def answer_target(teacher_logits: torch.Tensor, answer_mask: torch.Tensor, temperature: float = 1.0
                  ) -> AnswerTarget | None:
    """Cut the teacher's answer-token distributions out of ``teacher_logits`` [B, T, vocab] (None without answers).

    ``answer_mask`` is BoolTensor [B, T]; position ``t`` predicts token ``t + 1``.
    """
    predicts = torch.zeros_like(answer_mask)
    predicts[:, :-1] = answer_mask[:, 1:]  # (B, T)
    rows = predicts.any(dim=1).nonzero().flatten()  # (R,)
    if rows.numel() == 0:
        return None
    positions = predicts[rows].any(dim=0).nonzero().flatten()  # (P,)
    picked = predicts[rows][:, positions]  # (R, P)
    logits = teacher_logits[rows][:, positions].float() / temperature  # (R, P, V)
    return AnswerTarget(rows=rows, positions=positions, picked=picked,
                        teacher_logp=torch.log_softmax(logits, dim=-1).detach())


def full_answer_kl(model: Any, input_ids: torch.Tensor, target: AnswerTarget, temperature: float = 1.0
                   ) -> torch.Tensor:
    """KL(teacher || the student under full causal attention) on the answer tokens of the recall rows.

    Runs ``model`` (adapter on) on the rows ``target.rows`` of ``input_ids`` [B, T] with no
    attention mask, i.e. full causal attention, and scores only ``target.positions``. The adapter
    is merged after training, so it changes the full-attention path too; this term keeps that path
    copying the planted value.

    Returns
    -------
    Tensor
        Scalar, the mean KL over the answer tokens, with its graph.
    """
    logits = model(input_ids=input_ids[target.rows], use_cache=False,
                   logits_to_keep=target.positions).logits  # (R, P, V)
    student_logp = torch.log_softmax(logits.float() / temperature, dim=-1)  # (R, P, V)
    teacher_logp = target.teacher_logp
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1) * temperature**2  # (R, P)
    return kl[target.picked].mean()


def route_loss(attentions: Sequence[torch.Tensor], routes: torch.Tensor, first_layer: float = 0.5
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """How strongly the best head of the upper layers attends each answer's fact separator.

    Parameters
    ----------
    attentions : sequence of Tensor [B, H, T, T]
        Attention probabilities per layer (eager attention, ``output_attentions=True``).
    routes : LongTensor [B, T]
        At the first token ``t`` of each answer value, its fact's separator index (the query is
        position ``t - 1``, which predicts the value); -1 elsewhere.
    first_layer : float
        Layers from ``int(first_layer * n_layers)`` on count (0.5: the upper half; 0: all).

    Returns
    -------
    (loss, attention) : scalar tensors
        ``loss = mean(-log(max over heads and counted layers of attention[t - 1, separator]))`` and
        the mean of that maximum (detached).
    """
    rows, targets = (routes >= 0).nonzero(as_tuple=True)  # (n,), (n,)
    if rows.numel() == 0:
        zero = attentions[0].new_zeros((), dtype=torch.float32)
        return zero, zero
    separators = routes[rows, targets]
    upper = attentions[int(first_layer * len(attentions)) :]
    picked = torch.stack([layer[rows, :, targets - 1, separators] for layer in upper], dim=1)  # (n, L/2, H)
    return _route_loss_of(picked)


def _route_loss_of(picked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mean best attention) from ``picked`` [n, ...]: each route's attention per layer and head."""
    best = picked.float().flatten(1).max(dim=1).values  # (n,)
    return -(best + 1e-6).log().mean(), best.mean().detach()


#: Attention implementation of the route loss: sdpa for the outputs, plus the attention
#: probabilities of only the routed query rows (eager attention would materialize every [T, T] map).
ROUTE_ATTENTION = "sepllm_route_sdpa"


@dataclass
class _RouteCapture:
    """The routed queries of one forward and the attention they pay their separators, layer by layer.

    ``rows``, ``queries``, ``separators`` are LongTensor [n]: batch row, query position (the one
    that predicts the first value token) and the fact's separator position of each route.
    """

    rows: torch.Tensor
    queries: torch.Tensor
    separators: torch.Tensor
    first_layer: int
    picked: list[torch.Tensor] = field(default_factory=list)  # per counted layer: [n, H]


_capture = threading.local()


def _route_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                **kwargs: Any) -> tuple[torch.Tensor, None]:
    """sdpa attention that also records, while a :class:`_RouteCapture` is active, the routed rows' probabilities.

    ``query`` is [B, H, T, d], ``key`` and ``value`` [B, KV, T, d] (grouped heads), ``attention_mask``
    boolean or additive [B, 1, T, T]. The recorded probabilities keep their graph, so the route loss
    trains the queries and keys like eager attention would, at the cost of n rows instead of T.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                       scaling=scaling, **kwargs)
    capture: _RouteCapture | None = getattr(_capture, "active", None)
    if capture is not None and getattr(module, "layer_idx", 0) >= capture.first_layer:
        groups = query.shape[1] // key.shape[1]
        keys = key[capture.rows].repeat_interleave(groups, dim=1).float()  # (n, H, T, d)
        queries = query[capture.rows, :, capture.queries].float()  # (n, H, d)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        scores = torch.einsum("nhd,nhtd->nht", queries, keys) * scale  # (n, H, T)
        if attention_mask is not None:
            allowed = attention_mask[capture.rows, 0, capture.queries]  # (n, T)
            if allowed.dtype == torch.bool:
                scores = scores.masked_fill(~allowed[:, None, :], float("-inf"))
            else:
                scores = scores + allowed[:, None, :].float()
        else:
            later = torch.arange(scores.shape[-1], device=scores.device)[None, :] > capture.queries[:, None]
            scores = scores.masked_fill(later[:, None, :], float("-inf"))
        probabilities = scores.softmax(dim=-1)  # (n, H, T)
        index = torch.arange(probabilities.shape[0], device=probabilities.device)
        capture.picked.append(probabilities[index, :, capture.separators])  # (n, H)
    return output, None


def use_route_attention(model: Any) -> None:
    """Switch ``model`` (a transformers model or PeftModel) to :data:`ROUTE_ATTENTION`, registering it once."""
    from transformers import AttentionInterface

    AttentionInterface.register(ROUTE_ATTENTION, _route_sdpa)
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        ALL_MASK_ATTENTION_FUNCTIONS.register(ROUTE_ATTENTION, sdpa_mask)  # masks built by the model itself
    except ImportError:  # older transformers: the 4D masks we pass are used as they are
        pass
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(ROUTE_ATTENTION)


def captured_route_loss(model: Any, routes: torch.Tensor, first_layer: float, **forward: Any
                        ) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Run ``model(**forward)`` (set to :data:`ROUTE_ATTENTION`) and return (output, route loss, attention).

    The same quantities as :func:`route_loss` on eager attention probabilities, from only the
    routed query rows. ``routes`` is LongTensor [B, T] as there; with no route the loss is 0.
    """
    rows, targets = (routes >= 0).nonzero(as_tuple=True)  # (n,), (n,)
    layers = int(getattr(model.config, "num_hidden_layers", 0))
    capture = _RouteCapture(rows=rows, queries=targets - 1, separators=routes[rows, targets],
                            first_layer=int(first_layer * layers))
    _capture.active = capture if rows.numel() else None
    try:
        output = model(**forward)
    finally:
        _capture.active = None
    if not capture.picked:
        zero = torch.zeros((), dtype=torch.float32, device=routes.device)
        return output, zero, zero
    return (output, *_route_loss_of(torch.stack(capture.picked, dim=1)))  # (n, L_upper, H)


# ----------------------------------------------------------------------------------------- checkpoints


def _lora_config(config: AdaptConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=config.target_modules, task_type="CAUSAL_LM")


def _save_adapter(model: Any, folder: Path, dtype: torch.dtype | None) -> None:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` atomically (optionally cast)."""
    from safetensors.torch import load_file, save_file

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if dtype is not None:
        weights = tmp / "adapter_model.safetensors"
        tensors = {k: v.to(dtype).contiguous() for k, v in load_file(weights).items()}
        save_file(tensors, weights, metadata={"format": "pt"})
    # Keep non-adapter files already in ``folder`` (metadata, history) when replacing it.
    if folder.exists():
        for item in folder.iterdir():
            if not (tmp / item.name).exists() and item.is_file():
                shutil.copy2(item, tmp / item.name)
        shutil.rmtree(folder)
    tmp.rename(folder)


def save_checkpoint(model: Any, optimizer: torch.optim.Optimizer, step: int, history: list[dict[str, float]],
                    out_dir: Path) -> Path:
    """Adapter (fp32) + optimizer state + step + history under ``out_dir/checkpoint``."""
    folder = out_dir / CHECKPOINT_DIR
    _save_adapter(model, folder, dtype=None)
    state = {"step": step, "optimizer": optimizer.state_dict(), "history": history}
    torch.save(state, folder / (TRAINER_STATE + ".tmp"))
    os.replace(folder / (TRAINER_STATE + ".tmp"), folder / TRAINER_STATE)
    return folder


def load_adapter_weights(model: Any, folder: str | os.PathLike[str], remedy: str) -> None:
    """Load the LoRA weights saved in ``folder`` into the ``PeftModel`` ``model`` (same rank and targets)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        raise ValueError(f"{folder} holds no adapter_model.safetensors: {remedy}")
    weights = load_file(path, device=str(next(model.parameters()).device))
    try:
        result = set_peft_model_state_dict(model, weights)
    except RuntimeError as exc:  # shape mismatch: another rank
        raise ValueError(f"{folder} does not match this model's LoRA ({exc.args[0].splitlines()[0]}): {remedy}") from exc
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{folder} does not match this model ({len(unexpected)} unexpected adapter "
                         f"weights): {remedy}")


def load_checkpoint(model: Any, optimizer: torch.optim.Optimizer, out_dir: Path
                    ) -> tuple[int, list[dict[str, float]]]:
    """Restore adapter weights and optimizer state; return (step, history). (0, []) when none."""
    folder = out_dir / CHECKPOINT_DIR
    if not (folder / TRAINER_STATE).is_file():
        return 0, []
    load_adapter_weights(model, folder, "use another --out folder or drop --resume")
    state = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["history"])


# ----------------------------------------------------------------------------------------- training


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
                model, batch.routes.to(device), config.route_from, input_ids=input_ids, attention_mask=mask,
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
            target = answer_target(teacher_logits, answer_mask.to(device), config.temperature)
        del teacher_logits
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        full_kl = None
        if target is not None:
            # A second, unmasked student forward after the first backward: one graph in memory at a time.
            full_term = full_answer_kl(model, input_ids, target, config.temperature)
            (config.full_answer_weight * full_term).backward()
            full_kl = float(full_term.detach())
            loss = loss.detach() + config.full_answer_weight * full_kl
            del full_term, target
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
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


def student_mask(input_ids: torch.Tensor, table: torch.Tensor, config: AdaptConfig,
                 answer_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The SepLLM mask of each row, BoolTensor [B, 1, T, T]: ``config.local`` on recall rows (those with
    answer tokens in ``answer_mask`` [B, T]), ``config.plain_local`` (when set) on plain-text rows."""
    mask = sepllm_mask(input_ids, table, initial=config.initial, local=config.local)
    if not config.plain_local or config.plain_local == config.local:
        return mask
    plain = (torch.ones(input_ids.shape[0], dtype=torch.bool) if answer_mask is None
             else ~answer_mask.any(dim=1).cpu()).to(mask.device)  # (B,)
    if not bool(plain.any()):
        return mask
    wide = sepllm_mask(input_ids, table, initial=config.initial, local=config.plain_local)
    return torch.where(plain[:, None, None, None], wide, mask)


def save_adapter(model: Any, out_dir: Path, config: AdaptConfig, *, base_model: str,
                 history: list[dict[str, float]], separators: int) -> None:
    """Write the final adapter, its metadata (``sepllm_adapt.json``) and ``history.csv`` into ``out_dir``."""
    dtype = getattr(torch, config.save_dtype) if config.save_dtype else None
    staging = out_dir / "adapter.partial-final"
    _save_adapter(model, staging, dtype=dtype)
    for item in staging.iterdir():
        os.replace(item, out_dir / item.name)
    shutil.rmtree(staging, ignore_errors=True)
    last = history[-1] if history else {}
    meta = {"base_model": base_model, "method": "sepllm-self-distillation", "config": asdict(config),
            "separator_tokens": separators, "steps_done": len(history) and int(last.get("step", 0)),
            "final_kl": last.get("kl"), "final_loss": last.get("loss")}
    (out_dir / ADAPT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    with open(out_dir / HISTORY_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss", "kl", "lm", "lr", "seconds", "answer_kl",
                                                    "answer_lm", "first_value_lm", "route_attention",
                                                    "full_answer_kl"])
        writer.writeheader()
        writer.writerows(history)


def load_adapted(model: Any, adapter_dir: str | os.PathLike[str], *, merge: bool = True) -> Any:
    """Apply a saved adapter to ``model``: merged into the weights (default) or as a ``PeftModel``."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    return peft_model.merge_and_unload() if merge else peft_model
