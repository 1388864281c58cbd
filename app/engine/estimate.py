"""Memory estimate before loading (weights + KV cache + runtime) and a refusal with numbers when it cannot fit.

The KV cache holds ``2 (keys, values) x layers x kv_heads x head_dim x bytes`` per entry. A bounded
cache holds at most its budget (plus one prefill chunk before it is compressed); a full cache holds
every token. The estimate takes plain ints, so it never depends on ``sepllm_core`` internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.engine import devices
from app.engine.model_info import ModelInfo, read_gguf_info, read_model_info
from app.errors import ResourceError

log = logging.getLogger(__name__)

# bitsandbytes storage per quantized Linear parameter: int8 is 1 byte (+ one fp32 scale per row);
# nf4 is half a byte plus one fp32 absmax per block of 64.
_FOUR_BIT_BYTES_PER_PARAM = 0.5 + 4 / 64
# The CPU decode step's int4 copy (sepllm_core.int4): half a byte of codes plus a bf16 scale and zero per 32.
INT4_COPY_BYTES_PER_PARAM = 0.5 + 4 / 32
# Registry sources whose weights are (most likely) 4-bit already: the Q4_1 default model, imported GGUFs.
FOUR_BIT_SOURCES = ("default", "gguf")
# What the process holds besides weights and cache: the Python interpreter with torch and
# transformers imported (measured 0.35 GB RSS on Linux), or the CUDA allocator's workspace.
_CPU_RUNTIME_BYTES = 400_000_000
_GPU_RUNTIME_BYTES = 300_000_000
DEFAULT_CHUNK_TOKENS = 512


def format_bytes(count: float) -> str:
    """``6_100_000_000`` -> ``6.1 GB``; below a gigabyte in MB."""
    if abs(count) >= 1e9:
        return f"{count / 1e9:.1f} GB"
    return f"{count / 1e6:.0f} MB"


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model needs on one device for a given quantization, cache and document length."""

    model: str
    device: str
    quant: str
    dtype: str
    weights_bytes: int
    kv_bytes: int  # the cache as run (bounded or full), at its peak
    kv_bytes_full: int  # what a full cache of ``tokens`` would hold
    kv_entries: int
    tokens: int
    overhead_bytes: int  # activations of one prefill chunk + runtime
    kv_bytes_per_entry: int
    weights_bytes_by_quant: dict[str, int] = field(default_factory=dict)
    kv_bytes_int8: int = 0  # the same cache with int8 entries (0: unknown, or already int8)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.overhead_bytes

    @property
    def bounded(self) -> bool:
        return self.kv_entries < self.tokens

    def total_with_quant(self, quant: str) -> int:
        return self.weights_bytes_by_quant[quant] + self.kv_bytes + self.overhead_bytes

    def describe(self) -> str:
        """One line: ``weights 269 MB + KV 14 MB (1024 entries; full cache 113 MB) + runtime 449 MB = 732 MB``."""
        kv = f"KV {format_bytes(self.kv_bytes)} ({self.kv_entries} entries"
        kv += f"; full cache {format_bytes(self.kv_bytes_full)})" if self.bounded else ")"
        return (
            f"weights {format_bytes(self.weights_bytes)} + {kv} + runtime "
            f"{format_bytes(self.overhead_bytes)} = {format_bytes(self.total_bytes)}"
        )


def weights_bytes(info: ModelInfo, quant: str, dtype_bytes: int) -> int:
    """Bytes of the weights once loaded with ``quant`` and non-quantized tensors in a ``dtype_bytes`` dtype."""
    groups = info.groups
    if info.quantization:  # already quantized on disk (GPTQ, AWQ, bnb ...): loaded as stored
        return groups.file_bytes
    if quant == "8bit":
        return groups.linear_params + 4 * groups.linear_rows + groups.other_params * dtype_bytes
    if quant == "4bit":
        return int(groups.linear_params * _FOUR_BIT_BYTES_PER_PARAM) + groups.other_params * dtype_bytes
    return groups.parameters * dtype_bytes


def kv_bytes_per_entry(info: ModelInfo, dtype_bytes: int) -> int:
    """Keys and values of one cached token across all layers."""
    return 2 * info.layers * info.kv_heads * info.head_dim * dtype_bytes


def kv_bytes(info: ModelInfo, dtype_bytes: int, entries: int) -> int:
    """``2 x layers x kv_heads x head_dim x bytes x entries``."""
    return kv_bytes_per_entry(info, dtype_bytes) * entries


def activation_bytes(info: ModelInfo, dtype_bytes: int, chunk: int, kv_length: int) -> int:
    """Peak activations of one forward over ``chunk`` tokens attending to ``kv_length`` entries.

    Hidden states and projections (a handful of ``chunk x hidden`` tensors), the MLP's intermediate
    tensors, and one head's fp32 attention scores ``chunk x kv_length`` (the fused SDPA kernels that
    transformers uses by default never hold all heads' scores at once).
    """
    hidden = 8 * chunk * info.hidden_size * dtype_bytes
    mlp = 3 * chunk * info.intermediate_size * dtype_bytes
    scores = chunk * kv_length * 4
    logits = 2 * info.vocab_size * 4  # logits_to_keep=1 in prefill; one row while decoding
    return hidden + mlp + scores + logits


def cache_entries(cache, tokens: int, chunk: int) -> tuple[int, int]:
    """(peak KV entries, prefill chunk) for a cache given as None/"full", an int or a config object.

    An int is the peak number of entries the pipeline will hold. A config object (duck-typed, such as
    ``sepllm_core.config.CacheConfig``) is read for ``policy``, ``max_entries`` and ``chunk_size``; a bounded
    cache peaks at its budget plus one chunk (appended before it is compressed).
    """
    if cache is None or cache == "full":
        return tokens, chunk
    if isinstance(cache, int):
        return min(cache, tokens), chunk
    chunk = int(getattr(cache, "chunk_size", None) or chunk)
    if getattr(cache, "policy", "full") == "full" or not getattr(cache, "max_entries", None):
        return tokens, chunk
    return min(int(cache.max_entries) + chunk, tokens), chunk


def preflight_tokens(cache_config) -> int:
    """Tokens the pre-run check sizes a cache for: its budget when bounded, 8192 for a full cache."""
    return 8192 if not cache_config.bounded else int(cache_config.max_entries)


def model_info_for(name_or_path: str | None) -> tuple[str, ModelInfo]:
    """(name, info) of a registered model, a model folder or a GGUF file."""
    from app.engine import registry

    entry = registry.resolve(name_or_path)
    path = Path(registry.base_of(entry).path)  # an adapter is merged into its base: the same size
    if path.is_file() and path.suffix.lower() == ".gguf":
        return entry.name, read_gguf_info(path)
    return entry.name, read_model_info(path)


def estimate_memory(
    name_or_path: str | None,
    device: str = "auto",
    quant: str = "none",
    cache=None,
    tokens: int = 4096,
    dtype: str = "auto",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    decode_weights: str = "bf16",
    four_bit_source: bool | None = None,
) -> MemoryEstimate:
    """Estimate the memory a model needs on ``device`` for a document of ``tokens`` tokens.

    Parameters
    ----------
    name_or_path : a registered name, a model folder or a GGUF file; None is the default model.
    device : auto | cpu | cuda[:N] | mps.
    quant : none | 8bit | 4bit.
    cache : None or "full" for a full cache, an int (peak KV entries) or a cache config object.
    tokens : tokens the model will see (document + prompt + output).
    decode_weights : auto | bf16 | int4, as ``load_model`` takes it: on the CPU, int4 adds the decode
        step's 4-bit copy; auto adds it for the default model and models imported from a GGUF
        (whether the weights are 4-bit is only known once they are read; most GGUFs are).
    four_bit_source : whether auto counts the copy; None looks the model up in the registry.
    """
    from app.engine import registry

    name, info = model_info_for(name_or_path)
    if four_bit_source is None:
        four_bit_source = registry.resolve(name_or_path).source in FOUR_BIT_SOURCES
    return estimate_from_info(name, info, device, quant, cache, tokens, dtype, chunk_tokens,
                              int4_copy=decode_weights == "int4" or (decode_weights == "auto" and four_bit_source))


def estimate_from_info(
    name: str,
    info: ModelInfo,
    device: str = "auto",
    quant: str = "none",
    cache=None,
    tokens: int = 4096,
    dtype: str = "auto",
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    int4_copy: bool = False,
) -> MemoryEstimate:
    """:func:`estimate_memory` for a model whose :class:`ModelInfo` is already read.

    ``int4_copy``: count the CPU decode step's 4-bit copy of the linear weights (bf16 CPU models only).
    """
    quant = devices.check_quant(quant)
    device = devices.choose_device(device)
    torch_dtype = devices.choose_dtype(device, dtype)
    return estimate_resolved(name, info, device, devices.dtype_name(torch_dtype), quant, cache, tokens,
                             chunk_tokens, int4_copy)


def estimate_resolved(
    name: str,
    info: ModelInfo,
    device: str,
    dtype: str,
    quant: str = "none",
    cache=None,
    tokens: int = 4096,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    int4_copy: bool = False,
) -> MemoryEstimate:
    """:func:`estimate_from_info` for a device and dtype already chosen (``cpu``/``cuda``, ``bf16`` ...).

    Touches no hardware, so it also sizes machines other than this one (the fit table in the README).
    """
    quant = devices.check_quant(quant)
    nbytes = devices.dtype_bytes(dtype)
    entries, chunk = cache_entries(cache, tokens, chunk_tokens)
    per_entry = kv_bytes_per_entry(info, nbytes)
    int8_per_entry = 2 * info.layers * info.kv_heads * (info.head_dim + nbytes)  # codes + a scale per vector
    already_int8 = getattr(cache, "kv_quant", "none") == "int8"
    if already_int8:
        per_entry = int8_per_entry
    by_quant = {q: weights_bytes(info, q, nbytes) for q in devices.QUANTS}
    if int4_copy and device == "cpu" and nbytes == 2 and not info.quantization:
        by_quant["none"] += int(info.groups.linear_params * INT4_COPY_BYTES_PER_PARAM)
    runtime = _GPU_RUNTIME_BYTES if device.startswith("cuda") else _CPU_RUNTIME_BYTES
    estimate = MemoryEstimate(
        model=name,
        device=device,
        quant=quant,
        dtype=dtype,
        weights_bytes=by_quant[quant],
        kv_bytes=per_entry * entries,
        kv_bytes_full=kv_bytes(info, nbytes, tokens),
        kv_entries=entries,
        tokens=tokens,
        overhead_bytes=runtime + activation_bytes(info, nbytes, min(chunk, tokens), entries),
        kv_bytes_per_entry=per_entry,
        weights_bytes_by_quant=by_quant,
        kv_bytes_int8=0 if already_int8 else int8_per_entry * entries,
    )
    log.debug("memory estimate for %s on %s: %s", name, device, estimate.describe())
    return estimate


def free_bytes(device: str) -> int:
    """Free memory where the model will live: GPU memory for CUDA, available RAM otherwise."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(estimate: MemoryEstimate, device: str | None = None) -> None:
    """Raise :class:`ResourceError` with the numbers and a fix when the estimate exceeds free memory."""
    device = device or estimate.device
    free = free_bytes(device)
    needed = estimate.total_bytes
    if needed <= free:
        return
    where = "GPU memory" if device.startswith("cuda") else "RAM"
    raise ResourceError(
        f"{estimate.model} needs {format_bytes(needed)} of {where} ({estimate.describe()}), "
        f"{format_bytes(free)} free: {_suggest_fix(estimate, device, free)}"
    )


def _suggest_fix(estimate: MemoryEstimate, device: str, free: int) -> str:
    if 0 < estimate.kv_bytes_int8 < estimate.kv_bytes and (
            estimate.total_bytes - estimate.kv_bytes + estimate.kv_bytes_int8 <= free):
        return "store the cache as int8 (--kv-quant int8)"  # costs less quality than lighter weights
    lighter = {"none": ["8bit", "4bit"], "8bit": ["4bit"], "4bit": []}[estimate.quant]
    for quant in lighter:
        if estimate.total_with_quant(quant) <= free:
            return f"choose --quant {quant}"
    kv_share = estimate.kv_bytes / max(estimate.total_bytes, 1)
    if not estimate.bounded and kv_share > 0.25:
        budget = max(
            (free - estimate.total_bytes + estimate.kv_bytes) // max(estimate.kv_bytes_per_entry, 1), 0
        )
        if budget > 256:
            return f"use a bounded cache (--cache sepllm) of at most {budget} entries"
    if device.startswith("cuda"):
        return "choose --quant 4bit with a bounded cache, a smaller model, or --device cpu"
    return "close other programs, choose --quant 4bit, a bounded cache or a smaller model"
