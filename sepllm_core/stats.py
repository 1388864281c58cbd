"""KV bytes kept vs what a full cache would hold for the same tokens."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's size.

    Attributes
    ----------
    tokens_seen : int
        Tokens read so far (prefill and decode), evicted ones included.
    kv_entries : int
        Entries held per full-attention layer now.
    kv_bytes : int
        Key + value bytes held now, all layers (entries actually stored, not spare capacity).
    kv_bytes_full_equivalent : int
        What transformers' own ``DynamicCache(config=...)`` would hold for ``tokens_seen`` tokens
        (full layers hold every token; sliding-window layers hold their window).
    kv_entries_peak, kv_bytes_peak : int
        Largest values seen, measured after each forward and before eviction.
    kv_bytes_allocated : int
        Bytes of the preallocated buffers (held memory, spare capacity included).
    evicted : int
        Entries evicted so far (per full-attention layer).
    """

    tokens_seen: int
    kv_entries: int
    kv_bytes: int
    kv_bytes_full_equivalent: int
    kv_entries_peak: int = 0
    kv_bytes_peak: int = 0
    kv_bytes_allocated: int = 0
    evicted: int = 0

    @property
    def kept_fraction(self) -> float:
        """``kv_bytes / kv_bytes_full_equivalent`` (1.0 before any token)."""
        if self.kv_bytes_full_equivalent == 0:
            return 1.0
        return self.kv_bytes / self.kv_bytes_full_equivalent

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-serializable dict."""
        return {**asdict(self), "kept_fraction": self.kept_fraction}


def bytes_per_entry(keys: Any, values: Any) -> int:
    """Bytes one cached token takes in one layer, from its key/value tensors ``[b, h, s, d]``."""
    if keys is None or values is None:
        return 0
    b, h, _, dk = keys.shape
    dv = values.shape[-1]
    return int(b * h * (dk * keys.element_size() + dv * values.element_size()))
