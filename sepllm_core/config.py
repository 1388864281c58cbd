"""CacheConfig: which KV entries a compressed cache keeps, how it reads, and how it numbers positions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

POLICIES = ("sepllm", "window", "full")
POSITION_MODES = ("original", "shifted", "auto")
KV_QUANT = ("none", "int8")


@dataclass(frozen=True)
class CacheConfig:
    """Budgets and behaviour of a compressed KV cache.

    Parameters
    ----------
    policy : {"sepllm", "window", "full"}
        ``sepllm`` keeps initial + protected + separator tokens + a recent window; ``window`` keeps
        initial + protected + a recent window (StreamingLLM); ``full`` never evicts.
    initial : int
        The first ``initial`` tokens of the stream (attention sinks), never evicted.
    separators : int
        Cap on kept separator tokens outside the recent window; the oldest are dropped first.
        Ignored by ``window`` and ``full``.
    local : int
        Minimum recent window: the newest ``local`` evictable entries are always kept.
    max_entries : int
        Total cap on entries per full-attention layer, protected entries excepted (they are never
        evicted, so a huge protected prefix can exceed it). Ignored by ``full``.
    chunk_size : int
        Tokens per prefill forward; the cache compresses after each chunk.
    positions : {"original", "shifted", "auto"}
        ``original``: kept tokens keep their absolute positions (exact SepLLM inside the trained
        context). ``shifted``: kept tokens get contiguous positions, cached keys are re-rotated.
        ``auto``: original positions until the next position would pass the model's
        ``max_position_embeddings``, then the kept entries are renumbered contiguously (and again
        whenever that limit is reached).
    fill_recent : bool
        True (default): a cache over budget keeps exactly ``max_entries``, giving the
        room that initial + separators + local leave to the newest tokens. False: it keeps only
        initial + protected + separators + local after every chunk, the pattern of the SepLLM
        training mask (:mod:`sepllm_core.training_mask`); a prefill chunk then sees at most ``local +
        chunk_size`` recent tokens, and ``max_entries`` is only a cap. For adapted models, whose read-out
        from separators fades when the recent window is wider than they were trained with.
    kv_quant : {"none", "int8"}
        ``int8`` stores the full-attention layers' keys and values as int8 with one scale per
        token and head (absmax, in the model's dtype), 0.52x the bytes of bf16 entries for 64-dim
        heads: about twice the entries in the same memory. They are dequantized for each
        forward, which costs decode time.
    """

    policy: str = "sepllm"
    initial: int = 4
    separators: int = 64
    local: int = 64
    max_entries: int = 2048
    chunk_size: int = 512
    positions: str = "auto"
    kv_quant: str = "none"
    fill_recent: bool = True

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"cache policy {self.policy!r} is unknown: use one of {', '.join(POLICIES)}")
        if self.positions not in POSITION_MODES:
            raise ValueError(
                f"positions {self.positions!r} is unknown: use one of {', '.join(POSITION_MODES)}"
            )
        if self.kv_quant not in KV_QUANT:
            raise ValueError(f"kv_quant {self.kv_quant!r} is unknown: use one of {', '.join(KV_QUANT)}")
        for name in ("initial", "separators", "local", "max_entries", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"cache {name} must be a non-negative integer, got {value!r}")
        if self.chunk_size < 1:
            raise ValueError(f"cache chunk_size must be at least 1, got {self.chunk_size}")
        if self.policy != "full":
            if self.local < 1:
                raise ValueError(f"cache local window must be at least 1 for policy {self.policy!r}")
            base = self.initial + self.kept_separators + self.local
            if self.max_entries < base:
                raise ValueError(
                    f"cache max_entries={self.max_entries} is below initial + separators + local = {base}: "
                    "raise max_entries or lower the other budgets"
                )

    @property
    def kept_separators(self) -> int:
        """Separator cap in effect (0 unless the policy is ``sepllm``)."""
        return self.separators if self.policy == "sepllm" else 0

    @property
    def prune_above(self) -> int:
        """Entry count above which the cache prunes (protected entries counted)."""
        if self.fill_recent:
            return self.max_entries
        return self.initial + self.kept_separators + self.local

    @property
    def bounded(self) -> bool:
        """Whether the cache evicts at all."""
        return self.policy != "full"

    def with_(self, **changes: Any) -> CacheConfig:
        """Return a validated copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output and settings files."""
        return asdict(self)

    @classmethod
    def balanced(cls) -> CacheConfig:
        """Product default: SepLLM, at most 2048 entries (256 separators, window of 1788+)."""
        return cls(policy="sepllm", initial=4, separators=256, local=256, max_entries=2048)

    @classmethod
    def max_saving(cls) -> CacheConfig:
        """Smallest memory: SepLLM, at most 512 entries (64 separators, window of 444+)."""
        return cls(policy="sepllm", initial=4, separators=64, local=128, max_entries=512)

    @classmethod
    def window(cls, max_entries: int = 2048) -> CacheConfig:
        """StreamingLLM baseline: 4 sinks + the newest ``max_entries - 4`` tokens."""
        return cls(policy="window", initial=4, separators=0, local=max(1, max_entries - 4),
                   max_entries=max_entries)

    @classmethod
    def full(cls) -> CacheConfig:
        """No eviction: the reference (memory grows with the text)."""
        return cls(policy="full", positions="original")
