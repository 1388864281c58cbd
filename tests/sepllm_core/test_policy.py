"""The keep policy against a plain-Python reference, and CacheConfig validation."""

from __future__ import annotations

import random

import pytest
import torch

from sepllm_core.config import CacheConfig
from sepllm_core.policy import keep_indices, keep_mask, lookup_separators, needs_eviction


def reference_keep(positions, seps, prot, cfg: CacheConfig) -> set[int]:
    """The policy spelled out entry by entry (indices into the given lists)."""
    n = len(positions)
    fills = cfg.fill_recent
    trigger = cfg.max_entries if cfg.fill_recent else cfg.initial + cfg.kept_separators + cfg.local
    if cfg.policy == "full" or n <= trigger:
        return set(range(n))
    newest_first = sorted(range(n), key=lambda i: -positions[i])
    keep = {i for i in range(n) if prot[i] or positions[i] < cfg.initial}
    free = [i for i in newest_first if i not in keep]
    keep |= set(free[: cfg.local])
    if cfg.policy == "sepllm":
        seps_left = [i for i in newest_first if i not in keep and seps[i]]
        keep |= set(seps_left[: cfg.separators])
    if fills:
        room = cfg.max_entries - len(keep)
        rest = [i for i in newest_first if i not in keep]
        keep |= set(rest[: max(room, 0)])
    return keep


CONFIGS = [
    CacheConfig(policy="sepllm", initial=4, separators=8, local=8, max_entries=32),
    CacheConfig(policy="sepllm", initial=2, separators=20, local=4, max_entries=40, fill_recent=False),
    CacheConfig(policy="sepllm", initial=0, separators=3, local=1, max_entries=10),
    CacheConfig(policy="window", initial=4, separators=0, local=12, max_entries=16),
    CacheConfig(policy="window", initial=4, separators=0, local=4, max_entries=16),
    CacheConfig(policy="sepllm", initial=4, separators=8, local=8, max_entries=32, fill_recent=False),
    CacheConfig(policy="window", initial=2, separators=0, local=6, max_entries=30, fill_recent=False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.policy}-{c.max_entries}-{c.local}-{c.fill_recent}")
@pytest.mark.parametrize("seed", range(6))
def test_keep_mask_matches_reference(cfg, seed):
    rng = random.Random(seed)
    n = rng.randint(1, 90)
    positions = rng.sample(range(200), n)  # any order, gaps as after earlier evictions
    positions[rng.randrange(n)] = 0 if rng.random() < 0.5 else positions[0]
    positions = list(dict.fromkeys(positions)) or [0]
    n = len(positions)
    seps = [rng.random() < 0.3 for _ in range(n)]
    prot = [rng.random() < 0.08 for _ in range(n)]
    mask = keep_mask(torch.tensor(positions), torch.tensor(seps), torch.tensor(prot), cfg)
    got = set(mask.nonzero().flatten().tolist())
    assert got == reference_keep(positions, seps, prot, cfg)
    if n > cfg.max_entries and cfg.fill_recent and not any(prot):
        assert len(got) == cfg.max_entries
    if not cfg.fill_recent and not any(prot):
        assert len(got) <= cfg.initial + cfg.kept_separators + cfg.local


def test_without_fill_the_window_stays_local_under_the_budget():
    """fill_recent=False keeps sinks + newest separators + exactly ``local`` newest tokens, well under max_entries."""
    filled = CacheConfig(initial=2, separators=4, local=3, max_entries=12)
    exact = filled.with_(fill_recent=False)
    ids = torch.tensor([5, 5, 9, 5, 5, 5, 9, 5, 5, 5, 5, 5, 5])  # 9 is a separator
    table = torch.zeros(10, dtype=torch.bool)
    table[9] = True
    none = torch.zeros(13, dtype=torch.bool)
    assert keep_indices(ids, table, none, filled).tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]  # 12 kept
    assert keep_indices(ids, table, none, exact).tolist() == [0, 1, 2, 6, 10, 11, 12]
    assert exact.prune_above == 9 and filled.prune_above == 12
    assert needs_eviction(10, exact) and not needs_eviction(10, filled)


def test_window_keeps_sinks_and_newest():
    cfg = CacheConfig.window(max_entries=10)
    kept = keep_indices(torch.arange(30), torch.zeros(30, dtype=torch.bool), torch.zeros(30, dtype=torch.bool), cfg)
    assert kept.tolist() == [0, 1, 2, 3, 24, 25, 26, 27, 28, 29]


def test_sepllm_keeps_newest_separators_outside_window():
    cfg = CacheConfig(initial=2, separators=2, local=3, max_entries=7)
    ids = torch.tensor([5, 5, 9, 5, 9, 5, 9, 5, 5, 9, 5, 5, 5])  # 9 is a separator
    table = torch.zeros(10, dtype=torch.bool)
    table[9] = True
    kept = keep_indices(ids, table, torch.zeros(13, dtype=torch.bool), cfg).tolist()
    # sinks 0,1; window 10,11,12; newest separators outside the window 9 and 6
    assert kept == [0, 1, 6, 9, 10, 11, 12]


def test_protected_entries_survive_even_over_budget():
    cfg = CacheConfig(initial=1, separators=0, local=2, max_entries=4)
    prot = torch.zeros(12, dtype=torch.bool)
    prot[2:7] = True
    kept = keep_indices(torch.arange(12), torch.zeros(12, dtype=torch.bool), prot, cfg).tolist()
    assert kept == [0, 2, 3, 4, 5, 6, 10, 11]


def test_lookup_separators_out_of_table_ids():
    table = torch.tensor([False, True, False])
    assert lookup_separators(torch.tensor([1, 2, 7, -1]), table).tolist() == [True, False, False, False]


def test_needs_eviction():
    cfg = CacheConfig(max_entries=100, separators=10, local=10)
    assert not needs_eviction(100, cfg) and needs_eviction(101, cfg)
    assert not needs_eviction(10**6, CacheConfig.full())


@pytest.mark.parametrize("kwargs", [
    {"policy": "lru"}, {"positions": "relative"}, {"initial": -1}, {"chunk_size": 0},
    {"max_entries": 10, "separators": 8, "local": 8}, {"local": 0}, {"separators": 1.5},
])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        CacheConfig(**kwargs)


def test_presets_are_valid_and_ordered():
    assert CacheConfig.max_saving().max_entries < CacheConfig.balanced().max_entries
    assert CacheConfig.full().policy == "full" and not CacheConfig.full().bounded
    assert CacheConfig.window(512).kept_separators == 0
    assert CacheConfig.balanced().with_(chunk_size=128).chunk_size == 128
