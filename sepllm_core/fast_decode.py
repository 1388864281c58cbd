"""Fast single-token decode attention on CPU: grouped matmuls instead of SDPA's flash kernel.

On CPU, ``torch.nn.functional.scaled_dot_product_attention`` runs its flash kernel even for one
query token; with bf16 that kernel is 5-25x slower than two small matmuls (measured on the
default model's shapes: 9 query heads, 3 KV heads, head_dim 64, 512-8192 cached entries), and it
was most of a decode step. :func:`decode_attention` does what transformers' eager attention does
(scores in the model dtype, softmax in fp32, then back), without repeating the KV heads: the
query heads are grouped onto their KV head with a view.

The output layer is the other large cost of a decode step on a small model: the default model's
tied 49152 x 576 head took ~45 % of the linear time as a bf16 GEMV. :class:`FastDecode` computes
it with a oneDNN-prepacked copy of the weight (bit-equal logits, about 2x faster here), packed
once per model and process, for the plain decoder-only architectures whose logits are exactly
``lm_head(last hidden state)``.

The decoder's own linear layers are prepacked by :mod:`sepllm_core.packing` (done once at load);
this module only decodes with them.

It is used through :class:`FastDecode`, which switches a model's attention implementation to a
registered wrapper for the duration of one decode forward. The wrapper takes the fast path only
for one query token on CPU without features it does not handle (soft-capping, attention sinks,
dropout in training); everything else (prefill, CUDA, other attention kernels) goes to the
model's own implementation unchanged.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from sepllm_core.packing import PackedLinear, packed_linear

log = logging.getLogger(__name__)

_PREFIX = "sepllm_decode_"
_BASES = ("sdpa", "eager")
"""Attention implementations the wrapper can stand in for (it falls back to them)."""

_UNHANDLED_KWARGS = ("softcap", "s_aux", "sinks", "position_bias", "head_mask")

PLAIN_HEAD_MODELS = ("llama", "qwen2", "qwen3", "mistral", "phi3", "smollm3")
"""Model types whose logits are exactly ``lm_head(last hidden state)`` (no soft-capping, no scale)."""

MAX_PACKED_HEAD_BYTES = 512 * 2**20
"""The packed head is a second copy of the output weight: skipped above this size."""

BATCHED_MAX_ENTRIES = 4096
"""Cache length up to which :func:`decode_attention` batches over KV heads (measured crossover ~4-8k)."""

_PACKED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, int, torch.Tensor]] = weakref.WeakKeyDictionary()


def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float, valid: int | None = None) -> torch.Tensor:
    """Attention of one query token over the cached entries, KV heads shared by query-head groups.

    Parameters
    ----------
    query : torch.Tensor, shape ``[b, heads, 1, d]``
    key, value : torch.Tensor, shape ``[b, kv_heads, n, d]`` (``heads`` a multiple of ``kv_heads``)
    attention_mask : torch.Tensor, optional
        Boolean (True = attend) or additive float, broadcastable to ``[b, 1, 1, >= n]``.
    scaling : float
        Multiplies the scores (usually ``d ** -0.5``).
    valid : int, optional
        Only the first ``valid`` entries are attended: ``key`` and ``value`` may run past them into
        finite padding, so that matmul shapes repeat from step to step. The result is bit-equal to
        attending ``key[:, :, :valid]`` (tested).

    Returns
    -------
    torch.Tensor, shape ``[b, 1, heads, d]`` (contiguous), as transformers' attention functions return.
    """
    b, heads, _, d = query.shape
    kv_heads, n = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    grouped = query.reshape(b, kv_heads, groups, d)  # head h uses KV head h // groups
    # [n, d] slices of the cache buffers are contiguous; [b, kv_heads, n, d] views of them are
    # not. Below BATCHED_MAX_ENTRIES one bmm per batch row over all KV heads is fastest, with the
    # keys as the left operand (a transposed strided batch would be copied first); above it, one
    # mm per KV head is. Both are bit-equal to eager attention's matmuls.
    batched = n <= BATCHED_MAX_ENTRIES
    if b == 1 and batched:  # the decode step's case: no per-row copies
        scores = torch.bmm(key[0], grouped[0].transpose(1, 2)).transpose(1, 2) * scaling  # [kv_heads, groups, n]
        if valid is not None and valid < n:
            scores[..., valid:] = float("-inf")
        if attention_mask is not None:
            mask = attention_mask[0, :, :, :n]
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        # the scores are a transposed view; contiguous probabilities spare bmm a copy of them
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype, memory_format=torch.contiguous_format)
        return torch.bmm(probs, value[0]).reshape(1, 1, heads, d)
    if valid is not None and valid < n:  # per-row or per-head matmuls: just drop the padding
        key, value, n = key[:, :, :valid], value[:, :, :valid], valid
    scores = query.new_empty((b, kv_heads, groups, n))
    for i in range(b):
        if batched:
            scores[i] = torch.bmm(key[i], grouped[i].transpose(1, 2)).transpose(1, 2)
            continue
        for h in range(kv_heads):
            torch.mm(grouped[i, h], key[i, h].t(), out=scores[i, h])
    scores = scores * scaling
    if attention_mask is not None:
        mask = attention_mask[..., :n]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = query.new_empty((b, kv_heads, groups, d))
    for i in range(b):
        if batched:
            torch.bmm(probs[i], value[i], out=out[i])
            continue
        for h in range(kv_heads):
            torch.mm(probs[i, h], value[i, h], out=out[i, h])
    return out.reshape(b, 1, heads, d)


def decode_attention_int8(query: torch.Tensor, key_codes: torch.Tensor, key_scale: torch.Tensor,
                          value_codes: torch.Tensor, value_scale: torch.Tensor, scaling: float) -> torch.Tensor:
    """:func:`decode_attention` over int8 entries (one sequence), without dequantizing the keys.

    The scores come from ``torch._weight_int8pack_mm`` (bf16 query times int8 keys times each
    key's scale); each value's scale is folded into its attention weight, so the values are only
    converted to the query's dtype, not scaled.

    Parameters
    ----------
    query : torch.Tensor, shape ``[1, heads, 1, d]``
    key_codes, value_codes : torch.Tensor int8, shape ``[1, kv_heads, n, d]``
        Each head's ``[n, d]`` block contiguous (views of :class:`~sepllm_core.cache.SepLayer` buffers).
    key_scale, value_scale : torch.Tensor, shape ``[1, kv_heads, n, 1]``, in the query's dtype
    scaling : float

    Returns
    -------
    torch.Tensor, shape ``[1, 1, heads, d]``
    """
    _, heads, _, d = query.shape
    kv_heads = key_codes.shape[1]
    grouped = query.reshape(kv_heads, heads // kv_heads, d)
    scores = torch.stack([torch._weight_int8pack_mm(grouped[h], key_codes[0, h], key_scale[0, h, :, 0])
                          for h in range(kv_heads)])  # [kv_heads, groups, n]
    probs = torch.softmax(scores * scaling, dim=-1, dtype=torch.float32)
    weights = (probs * value_scale[0, :, :, 0].float()[:, None, :]).to(query.dtype)
    return torch.bmm(weights, value_codes[0].to(query.dtype)).reshape(1, 1, heads, d)


def _make_wrapper(base: str) -> Callable[..., tuple[torch.Tensor, None]]:
    fallback = ALL_ATTENTION_FUNCTIONS.get_interface(base, _eager_fallback())

    def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                  **kwargs: Any) -> tuple[Any, Any]:
        if (query.shape[2] != 1 or query.device.type != "cpu" or (dropout and module.training)
                or key.shape[1] == 0 or query.shape[1] % key.shape[1]
                or any(kwargs.get(name) is not None for name in _UNHANDLED_KWARGS)
                or kwargs.get("output_attentions")):
            return fallback(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                            **kwargs)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        return decode_attention(query, key, value, attention_mask, scale), None

    return attention


def _eager_fallback() -> Callable[..., Any]:
    from transformers.models.llama.modeling_llama import eager_attention_forward

    return eager_attention_forward


def _register() -> None:
    for base in _BASES:
        name = _PREFIX + base
        if name not in ALL_ATTENTION_FUNCTIONS._global_mapping:
            ALL_ATTENTION_FUNCTIONS.register(name, _make_wrapper(base))
        if name not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
            ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])


class FastDecode:
    """Per-model switch to the fast single-token attention during decode forwards.

    Parameters
    ----------
    model : transformers PreTrainedModel
    enabled : bool
        False keeps the model's own attention (the eager reference path).

    Notes
    -----
    ``active`` is False (and :meth:`step` does nothing) when the model is not on CPU, its
    attention implementation is neither ``sdpa`` nor ``eager``, its weights are quantized, or
    its config has no attention implementation to swap; ``reason`` says why.
    """

    def __init__(self, model: Any, enabled: bool = True):
        self.model = model
        self.config: Any = getattr(model, "config", None)
        self.base = getattr(self.config, "_attn_implementation", None)
        self.reason = self._unsupported(model) if enabled else "disabled"
        self.active = self.reason is None
        self.setup_s = 0.0
        self.head_reason: str | None = None
        self.decode_step: Any = None
        if self.active:
            _register()
            self.name = _PREFIX + str(self.base)
            self.head_reason = self._head_unsupported(model)
            if self.head_reason is None:
                from sepllm_core.decode_step import DecodeStep  # it builds on this module

                if DecodeStep.unsupported(model) is None:
                    self.decode_step = DecodeStep(model)
        else:
            log.debug("fast decode off: %s", self.reason)

    def _unsupported(self, model: Any) -> str | None:
        if getattr(self.config, "sub_configs", None):
            return "a config with sub-configs (multimodal)"
        if self.base not in _BASES:
            return f"attention implementation {self.base!r} (fast decode handles {', '.join(_BASES)})"
        if getattr(model, "hf_quantizer", None) is not None or getattr(self.config, "quantization_config", None):
            return "quantized weights"
        try:
            param = next(model.parameters())
        except StopIteration:
            return "no parameters"
        if param.device.type != "cpu":
            return f"model on {param.device.type} (the fast path is for CPU)"
        if not param.dtype.is_floating_point:
            return f"weights in {param.dtype}"
        return None

    @staticmethod
    def _head_unsupported(model: Any) -> str | None:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        model_type = getattr(model.config, "model_type", None)
        if model_type not in PLAIN_HEAD_MODELS:
            return f"model type {model_type!r} (packed head only for {', '.join(PLAIN_HEAD_MODELS)})"
        if not isinstance(head, torch.nn.Linear) or head.weight.dtype != torch.bfloat16:
            return "output layer is not a bf16 nn.Linear"
        if head.weight.numel() * 2 > MAX_PACKED_HEAD_BYTES:
            return f"output layer above {MAX_PACKED_HEAD_BYTES >> 20} MiB"
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return "oneDNN bf16 not available"
        if not callable(getattr(model, "get_decoder", None)):
            return "no decoder module"
        return None

    def _packed_head(self) -> torch.Tensor:
        """The output weight prepacked for oneDNN (once per model and weight version)."""
        head = self.model.get_output_embeddings()
        weight = head.weight
        if isinstance(head, PackedLinear):  # an untied head that pack_linears already packed
            return weight
        cached = _PACKED.get(head)
        if cached is not None and cached[:2] == (weight.data_ptr(), weight._version):
            return cached[2]
        start = time.perf_counter()
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)
        _PACKED[head] = (weight.data_ptr(), weight._version, packed)
        self.setup_s += time.perf_counter() - start
        return packed

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, cache: Any) -> torch.Tensor:
        """One decode forward of ``input_ids`` ``[1, 1]``; returns the last position's logits ``[vocab]`` fp32.

        Uses the written-out step (:class:`~sepllm_core.decode_step.DecodeStep`) where the model
        and ``cache`` allow it; falls back to the model's own forward (with ``logits_to_keep=1``)
        when fast decode or the packed head is off.
        """
        if self.decode_step is not None and getattr(cache, "full_attention_only", False):
            hidden = self.decode_step(input_ids, position_ids, cache)
        else:
            with self.step():
                if not self.active or self.head_reason is not None:
                    out = self.model(input_ids=input_ids, position_ids=position_ids, cache=cache, use_cache=True,
                                     logits_to_keep=1)
                    return out.logits[0, -1].float()
                hidden = self.model.get_decoder()(input_ids=input_ids, position_ids=position_ids, cache=cache,
                                                  use_cache=True).last_hidden_state[:, -1]
        return packed_linear(hidden, self._packed_head(), self.model.get_output_embeddings().bias)[0].float()

    def describe(self) -> str:
        """``fast``, ``fast (model head: why)`` or ``eager (why)``, for stats and logs."""
        if not self.active:
            return f"eager ({self.reason})"
        if self.head_reason is not None:
            return f"fast (model head: {self.head_reason})"
        if self.decode_step is None:
            return "fast"
        return "fast (written-out step, int4 weights)" if self.decode_step.int4 else "fast (written-out step)"

    @contextmanager
    def step(self) -> Iterator[None]:
        """Run the enclosed single-token forward with the fast attention (restored afterwards)."""
        if not self.active:
            yield
            return
        config = self.config
        config._attn_implementation = self.name
        try:
            yield
        finally:
            config._attn_implementation = self.base
