"""Which cache entries to keep: a pure function of token positions, separator flags and protection."""

from __future__ import annotations

import torch

from sepllm_core.config import CacheConfig


def needs_eviction(num_entries: int, config: CacheConfig) -> bool:
    """Whether a cache holding ``num_entries`` entries must be pruned now."""
    return config.bounded and num_entries > config.prune_above


def _newest(candidates: torch.Tensor, count: int) -> torch.Tensor:
    """The newest ``count`` True entries of ``candidates`` (entries sorted oldest first)."""
    if count <= 0:
        return torch.zeros_like(candidates)
    from_end = candidates.flip(0).cumsum(0).flip(0)  # 1 for the newest candidate, 2 for the next ...
    return candidates & (from_end <= count)


def keep_mask(
    positions: torch.Tensor, is_separator: torch.Tensor, protected: torch.Tensor, config: CacheConfig
) -> torch.Tensor:
    """Boolean mask of the entries to keep once the cache is over budget.

    Parameters
    ----------
    positions : torch.LongTensor, shape ``[n]``
        Absolute stream index of each entry (0 for the first token ever read); any order.
    is_separator : torch.BoolTensor, shape ``[n]``
        Whether each entry's token is a separator.
    protected : torch.BoolTensor, shape ``[n]``
        Entries that are never evicted (instruction header, rolling notes).
    config : CacheConfig
        Budgets. ``fill_recent``: keep exactly ``max_entries`` (plus protected overflow);
        ``fill_recent=False``: keep initial + protected + ``separators`` + ``local``.

    Returns
    -------
    torch.BoolTensor, shape ``[n]``
        In the same order as ``positions``. Priority: initial and protected entries, then the newest
        ``local`` entries, then the newest ``separators`` separators, then (with ``fill_recent``) the newest
        remaining entries up to ``max_entries``.
    """
    n = positions.numel()
    if not config.bounded or n <= config.prune_above:
        return torch.ones(n, dtype=torch.bool)
    order = torch.argsort(positions)  # oldest first
    pinned = protected[order] | (positions[order] < config.initial)
    free = ~pinned
    keep = pinned | _newest(free, config.local)
    if config.kept_separators:
        keep |= _newest(free & ~keep & is_separator[order], config.kept_separators)
    if config.fill_recent:
        room = config.max_entries - int(keep.sum())
        keep |= _newest(~keep, room)
    mask = torch.empty_like(keep)
    mask[order] = keep
    return mask


def keep_indices(
    token_ids: torch.Tensor,
    is_separator: torch.Tensor,
    protected: torch.Tensor,
    config: CacheConfig,
    positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sorted indices of the entries to keep, from token ids.

    Parameters
    ----------
    token_ids : torch.LongTensor, shape ``[n]``
        Token id of each cache entry.
    is_separator : torch.BoolTensor, shape ``[vocab]``
        Separator lookup table (:func:`sepllm_core.separators.separator_table`); ids past its end
        are not separators.
    protected : torch.BoolTensor, shape ``[n]``
        Entries that are never evicted.
    config : CacheConfig
        Budgets.
    positions : torch.LongTensor, shape ``[n]``, optional
        Absolute stream index of each entry; default ``arange(n)`` (entries in reading order,
        nothing evicted yet).

    Returns
    -------
    torch.LongTensor, shape ``[k]``
        Indices into the ``n`` entries, ascending.
    """
    if positions is None:
        positions = torch.arange(token_ids.numel())
    return keep_mask(positions, lookup_separators(token_ids, is_separator), protected, config).nonzero().flatten()


def lookup_separators(token_ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``table[token_ids]`` with ids outside the table (or negative) counting as non-separators."""
    inside = (token_ids >= 0) & (token_ids < table.numel())
    if table.numel() == 0:
        return inside
    return table[token_ids.clamp(0, max(table.numel() - 1, 0))] & inside
