"""Training losses: distillation KL with per-token weights, answer terms, full-attention KL, route loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sepllm_core.adapt.config import AdaptConfig


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
        them is added with ``config.experiment.answer_lm_weight``.

    Returns
    -------
    LossParts
        ``loss = kl + lm_weight * lm + answer_lm_weight * answer_lm + first_value_lm_weight * first_value_lm``
        (``lm_weight`` and ``answer_lm_weight`` from ``config.experiment``).
    """
    teacher_logp = torch.log_softmax(teacher_logits.float(), dim=-1)  # (B, T, V)
    student_logp = torch.log_softmax(student_logits.float(), dim=-1)  # (B, T, V)
    kl_per_position = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (B, T)
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
    lm_weight, answer_lm_weight = config.experiment.lm_weight, config.experiment.answer_lm_weight
    loss = kl + (lm_weight * lm if lm_weight > 0 else 0.0)
    if answer_mask is not None and bool(answer_mask[:, 1:].any()):
        targets = answer_mask[:, 1:]  # (B, T-1): position t predicts answer token t + 1
        answer_kl = kl_per_position[:, :-1][targets].mean()
        answer_lm = ce[targets].mean()
        first_lm = ce[targets & ~answer_mask[:, :-1]].mean()  # answer tokens whose predecessor is not one
        if answer_lm_weight > 0:
            loss = loss + answer_lm_weight * answer_lm
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
    (loss, kl, lm) : scalar tensors; ``loss = kl + lm_weight * lm`` (``config.experiment.lm_weight``).
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
        The teacher's log-probabilities there (fp32).
    """

    rows: torch.Tensor
    positions: torch.Tensor
    picked: torch.Tensor
    teacher_logp: torch.Tensor


def answer_target(teacher_logits: torch.Tensor, answer_mask: torch.Tensor) -> AnswerTarget | None:
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
    logits = teacher_logits[rows][:, positions].float()  # (R, P, V)
    return AnswerTarget(rows=rows, positions=positions, picked=picked,
                        teacher_logp=torch.log_softmax(logits, dim=-1).detach())


def full_answer_kl(model: Any, input_ids: torch.Tensor, target: AnswerTarget) -> torch.Tensor:
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
    student_logp = torch.log_softmax(logits.float(), dim=-1)  # (R, P, V)
    teacher_logp = target.teacher_logp
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)  # (R, P)
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
    return route_loss_of(picked)


def route_loss_of(picked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mean best attention) from ``picked`` [n, ...]: each route's attention per layer and head."""
    best = picked.float().flatten(1).max(dim=1).values  # (n,)
    return -(best + 1e-6).log().mean(), best.mean().detach()
