"""What the student sees: the separator table of a named set and the SepLLM mask of each training row."""

from __future__ import annotations

from typing import Any

import torch

from sepllm_core.adapt.config import SEPARATOR_SETS, AdaptConfig
from sepllm_core.separators import separator_table
from sepllm_core.training_mask import sepllm_mask


def separator_lookup(tokenizer: Any, which: str = "default") -> torch.Tensor:
    """The separator table ``BoolTensor [vocab]`` of a named set (see ``SEPARATOR_SETS``).

    Built by :func:`sepllm_core.separators.separator_table`, the rule the cache uses at inference.
    """
    if which not in SEPARATOR_SETS:
        raise ValueError(f"separator set {which!r} is unknown: use one of {', '.join(SEPARATOR_SETS)}")
    chars, line_breaks = SEPARATOR_SETS[which]
    if chars is None:
        return separator_table(tokenizer, line_breaks=line_breaks)
    return separator_table(tokenizer, chars=chars, line_breaks=line_breaks)


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

