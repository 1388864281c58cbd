"""The SepLLM training mask: each token sees the initial tokens, every earlier separator and its n nearest tokens.

The mask is what a SepLLM cache would hold if it never ran out of room for separators; a
student model trained under it learns to condense each segment into the separator that ends it.
``budget_mask`` is the bounded variant (at most ``separators`` kept separators), which emulates
the compressed cache token by token and serves to measure perplexity at an equal budget.

Both masks are ``[B, 1, T, T]`` booleans (``True`` = may attend). Hugging Face decoders take a 4D
mask as-is (``masking_utils`` returns a 4D tensor unchanged), so the same mask works for every
architecture that runs on ``sdpa`` (boolean) or ``eager`` (additive float) attention.
"""

from __future__ import annotations

import torch


def _check(input_ids: torch.Tensor, is_separator: torch.Tensor, initial: int, local: int) -> None:
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    if is_separator.ndim != 1 or is_separator.dtype != torch.bool:
        raise ValueError("is_separator must be a 1-D bool lookup table over the vocabulary")
    if initial < 0 or local < 1:
        raise ValueError(f"need initial >= 0 and local >= 1, got initial={initial}, local={local}")


def _causal_parts(
    input_ids: torch.Tensor, is_separator: torch.Tensor, initial: int, local: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Causal, (initial | local) and per-key separator flags, broadcastable to ``[B, T, T]``."""
    seq = input_ids.shape[1]
    device = input_ids.device
    query = torch.arange(seq, device=device)[:, None]  # (T, 1)
    key = torch.arange(seq, device=device)[None, :]  # (1, T)
    causal = key <= query  # (T, T)
    initial_or_local = (key < initial) | (query - key < local)  # (T, T)
    table = is_separator.to(device)
    key_is_sep = table[input_ids.clamp(0, table.numel() - 1)]  # (B, T)
    return causal, initial_or_local, key_is_sep


def sepllm_mask(
    input_ids: torch.Tensor,
    is_separator: torch.Tensor,
    *,
    initial: int = 4,
    local: int = 128,
    padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean SepLLM attention mask for a batch of training sequences.

    Query ``i`` may attend key ``j`` when ``j <= i`` and at least one of: ``j < initial``, the token
    at ``j`` is a separator, or ``i - j < local`` (the ``local`` nearest tokens, itself included).

    Parameters
    ----------
    input_ids : LongTensor [B, T]
        Token ids.
    is_separator : BoolTensor [vocab]
        Lookup table: ``True`` for separator token ids.
    initial : int
        Number of initial (attention-sink) tokens always visible.
    local : int
        Size of the sliding window of nearest tokens (>= 1).
    padding_mask : Tensor [B, T], optional
        1 for real tokens, 0 for padding; padded keys are hidden (a padded query keeps its own key
        so no attention row is empty).

    Returns
    -------
    BoolTensor [B, 1, T, T]
        ``True`` where attention is allowed.
    """
    _check(input_ids, is_separator, initial, local)
    causal, initial_or_local, key_is_sep = _causal_parts(input_ids, is_separator, initial, local)
    allowed = causal[None] & (initial_or_local[None] | key_is_sep[:, None, :])  # (B, T, T)
    if padding_mask is not None:
        allowed = _hide_padding(allowed, padding_mask)
    return allowed[:, None]


def budget_mask(
    input_ids: torch.Tensor,
    is_separator: torch.Tensor,
    *,
    initial: int = 4,
    local: int = 256,
    separators: int = 64,
    max_entries: int | None = None,
) -> torch.Tensor:
    """Boolean mask of a bounded SepLLM cache: initial + newest ``separators`` separators + window.

    Emulates, token by token, a cache of at most ``initial + separators + local`` entries that keeps
    the initial tokens, the ``separators`` most recent separators outside the window and the ``local``
    nearest tokens. With ``separators=0`` it is the recent-window (StreamingLLM) baseline.

    Parameters
    ----------
    input_ids : LongTensor [B, T]
    is_separator : BoolTensor [vocab]
    initial, local : int
        As in :func:`sepllm_mask`.
    separators : int
        How many separators before the window each query may still see (>= 0).
    max_entries : int, optional
        Total budget. When given, a query whose kept separators fall short of ``separators``
        widens its window to use the whole budget (the cache prunes to exactly ``max_entries``,
        filling with the newest tokens); ``local`` is then the minimum window.

    Returns
    -------
    BoolTensor [B, 1, T, T]
    """
    _check(input_ids, is_separator, initial, local)
    if separators < 0:
        raise ValueError(f"separators must be >= 0, got {separators}")
    causal, initial_or_local, key_is_sep = _causal_parts(input_ids, is_separator, initial, local)
    seq = input_ids.shape[1]
    device = input_ids.device
    # rank[b, j] = number of separators at positions <= j (counted over non-initial keys).
    not_initial = torch.arange(seq, device=device) >= initial  # (T,)
    counted = key_is_sep & not_initial  # (B, T)
    rank = counted.long().cumsum(dim=1)  # (B, T)
    # For query i the separators outside its window are keys j <= i - local; keep the newest ones:
    # those whose rank exceeds (separators before the window boundary) - separators.
    boundary = (torch.arange(seq, device=device) - local).clamp(min=-1)  # (T,) last key outside window
    before = torch.where(boundary >= 0, rank[:, boundary.clamp(min=0)], torch.zeros_like(rank))  # (B, T)
    newest = rank[:, None, :] > (before[:, :, None] - separators)  # (B, T, T)
    kept_sep = counted[:, None, :] & newest
    allowed = causal[None] & (initial_or_local[None] | kept_sep)  # (B, T, T)
    if max_entries is not None:
        if max_entries < initial + separators + local:
            raise ValueError(f"max_entries={max_entries} is below initial + separators + local")
        window = max_entries - initial - before.clamp(max=separators)  # (B, T) per-query window
        distance = torch.arange(seq, device=device)[:, None] - torch.arange(seq, device=device)[None, :]
        allowed = allowed | (causal[None] & (distance[None] < window[:, :, None]))
    return allowed[:, None]


def _hide_padding(allowed: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    real = padding_mask.to(device=allowed.device, dtype=torch.bool)  # (B, T)
    eye = torch.eye(allowed.shape[-1], dtype=torch.bool, device=allowed.device)
    return (allowed & real[:, None, :]) | eye[None]


def to_attention_mask(mask: torch.Tensor, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """Convert a boolean ``[B, 1, T, T]`` mask to what the model's attention kernel expects.

    Parameters
    ----------
    mask : BoolTensor [B, 1, T, T]
    attn_implementation : str
        ``model.config._attn_implementation``: ``"sdpa"`` takes the boolean mask, ``"eager"`` (and
        anything that adds the mask to the scores) takes 0 / -inf-like floats.
    dtype : torch.dtype
        The model's compute dtype, for the additive mask.

    Returns
    -------
    Tensor [B, 1, T, T]
        Boolean for sdpa, additive float otherwise.
    """
    if attn_implementation == "sdpa":
        return mask
    if "flash" in attn_implementation or "flex" in attn_implementation:
        raise ValueError(
            f"attention '{attn_implementation}' takes no custom 4D mask: load the model with "
            "attn_implementation='sdpa' or 'eager' for SepLLM training"
        )
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return additive.masked_fill(~mask, torch.finfo(dtype).min)
