"""SepLLM compressed KV cache for Hugging Face decoders (Qt-free; never imports ``app``).

The main names: :class:`CacheConfig` (policy and budgets), :func:`build_cache` /
:class:`SepCache` (a transformers ``Cache`` that compresses while reading),
:func:`separator_table` (separator tokens of any vocabulary), and :class:`Session`
(chunked prefill + decode loop yielding events, with cancel).
"""

from sepllm_core.cache import SepCache, build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.generate import SamplingConfig, Session
from sepllm_core.separators import separator_table

__all__ = ["CacheConfig", "SamplingConfig", "SepCache", "Session", "build_cache", "separator_table"]
