"""Training rows: read and split the texts, sample plain windows, mix in recall sequences."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sepllm_core.adapt.config import AdaptConfig


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

