"""Baselines behind the SepCache interface: the full cache and the recent window (StreamingLLM).

Every policy runs the same code path (:class:`sepllm_core.cache.SepCache`), so comparisons differ
only in which entries are kept.
"""

from __future__ import annotations

from typing import Any

import torch

from sepllm_core.cache import SepCache, build_cache
from sepllm_core.config import CacheConfig

__all__ = ["build_cache", "full_cache", "window_cache"]


def full_cache(model_config: Any, chunk_size: int = 512) -> SepCache:
    """A cache that never evicts (the reference), preallocated and grown geometrically."""
    return build_cache(model_config, CacheConfig.full().with_(chunk_size=chunk_size))


def window_cache(model_config: Any, max_entries: int = 2048, initial: int = 4, chunk_size: int = 512,
                 positions: str = "auto", rotary: torch.nn.Module | None = None) -> SepCache:
    """StreamingLLM: ``initial`` sink tokens + the newest ``max_entries - initial`` tokens."""
    config = CacheConfig(policy="window", initial=initial, separators=0, local=max(1, max_entries - initial),
                         max_entries=max_entries, chunk_size=chunk_size, positions=positions)
    return build_cache(model_config, config, None, rotary)
