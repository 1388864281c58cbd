"""SepLLM compressed KV cache for Hugging Face decoders (Qt-free; never imports ``app``).

The main names: :class:`CacheConfig` (policy and budgets), :func:`build_cache` /
:class:`SepCache` (a transformers ``Cache`` that compresses while reading),
:func:`separator_table` (separator tokens of any vocabulary), :func:`forward_chunk` /
:func:`stream_chunks` (the one streaming step: push, forward, compress; and chunked reading through
it), and :class:`Session` (chunked prefill + decode loop yielding events, with cancel). They load on
first use, so importing a light module such as :mod:`sepllm_core.events` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CacheConfig": "sepllm_core.config",
    "SamplingConfig": "sepllm_core.generate",
    "SepCache": "sepllm_core.cache",
    "Session": "sepllm_core.generate",
    "build_cache": "sepllm_core.cache",
    "forward_chunk": "sepllm_core.stream",
    "separator_table": "sepllm_core.separators",
    "stream_chunks": "sepllm_core.stream",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sepllm_core' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
