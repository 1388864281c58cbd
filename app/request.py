"""Settings -> SummaryRequest -> CacheConfig: the one translation the CLI, the GUI and the evaluations use.

The settings schema (:mod:`app.settings`) holds what the user chose; a
:class:`~app.summarize.events.SummaryRequest` is what one run needs; the core's ``CacheConfig`` is
what the cache is built from. The summary run, its memory check and the GUI's memory estimate all
go through :func:`cache_config`, so they can never disagree (an int8 cache counted as bf16, say).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app import settings
from app.summarize.events import SummaryRequest

# Settings copied one to one into SummaryRequest fields (the cache budgets go into ``cache_budget``).
REQUEST_SETTINGS = ("model", "device", "quant", "cache", "mode", "length", "style", "language", "kind",
                    "notes_every", "kv_quant", "decode_weights")


def from_settings(paths: Iterable[Path], values: dict[str, Any], **overrides: Any) -> SummaryRequest:
    """The request for ``paths`` from effective settings values; ``overrides`` set any other field."""
    fields: dict[str, Any] = {name: values[name] for name in REQUEST_SETTINGS if name in values}
    fields["cache_budget"] = settings.cache_budget(values)
    fields.update(overrides)
    return SummaryRequest(paths=list(paths), **fields)


def cache_config(request: SummaryRequest):
    """The ``sepllm_core.config.CacheConfig`` of the request's policy, budgets and entry storage.

    Raises :class:`app.settings.SettingsError` when the budgets do not fit together.
    """
    from sepllm_core.config import CacheConfig

    budget = dict(request.cache_budget)
    chunk = budget.pop("chunk", None)
    try:
        if request.cache == "full":
            config = CacheConfig.full()
        elif request.cache == "window":
            config = CacheConfig.window(budget.get("max_entries", CacheConfig().max_entries))
            if "initial" in budget:
                config = config.with_(initial=budget["initial"], local=config.max_entries - budget["initial"])
        else:
            config = CacheConfig(policy=request.cache, **budget)
        config = config.with_(kv_quant=request.kv_quant)
        return config.with_(chunk_size=chunk) if chunk else config
    except ValueError as exc:
        raise settings.SettingsError(f"cache settings rejected: {exc}") from exc


def estimate_for_request(request: SummaryRequest, tokens: int | None = None):
    """The :class:`app.engine.estimate.MemoryEstimate` of the request's model, device, weights and cache."""
    from app.engine.estimate import estimate_memory, preflight_tokens

    config = cache_config(request)
    return estimate_memory(request.model, request.device, request.quant, config,
                           tokens=tokens or preflight_tokens(config), decode_weights=request.decode_weights)
