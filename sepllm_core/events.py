"""Events yielded by the generator; the CLI prints them, the GUI re-emits them as Qt signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """Tokens processed so far in the current phase ("prefill" or "decode")."""

    phase: str
    tokens_done: int
    tokens_total: int
    tokens_per_s: float
    eta_s: float | None = None


@dataclass(frozen=True)
class Token:
    """Newly decoded text (may be several characters or empty when a token is partial UTF-8)."""

    text: str
    token_id: int


@dataclass(frozen=True)
class MemorySample:
    """KV cache held vs what a full cache would hold for the same tokens."""

    tokens_seen: int
    kv_entries: int
    kv_bytes: int
    kv_bytes_full_equivalent: int
    time_s: float


@dataclass(frozen=True)
class Done:
    """The generation finished; ``stats`` is a flat JSON-serializable dict."""

    text: str
    stats: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = "eos"  # "eos" | "stop_string" | "max_tokens" | "repetition" | "cancelled"


Event = Progress | Token | MemorySample | Done
