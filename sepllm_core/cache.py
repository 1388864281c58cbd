"""SepCache: a transformers Cache that keeps initial, protected, separator and recent tokens.

Usage per forward (see docs/ARCHITECTURE.md)::

    cache.push_tokens(input_ids, protected=False)   # [1, q], before the forward
    position_ids = cache.next_position_ids(q)       # [1, q]
    model(input_ids=..., position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1)
    cache.compress()                                # after the forward

Full-attention layers store keys/values in preallocated buffers with a fill pointer. Eviction
computes one keep mask from the entries' token ids (shared by every layer) and fills the holes it
leaves with the kept entries from the tail, so it copies only as many entries as it evicts. Entry
order in the buffers therefore is not reading order; the attention does not care, since every
cached entry precedes every new token and each key carries its position in its rotation.
Sliding-window layers (Gemma, Mistral variants) keep transformers' own sliding window.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from transformers.cache_utils import (
    Cache,
    CacheLayerMixin,
    DynamicSlidingWindowLayer,
    get_layer_types_and_kwargs,
)

from sepllm_core.config import CacheConfig
from sepllm_core.policy import keep_mask, lookup_separators, needs_eviction
from sepllm_core.positions import RotaryShifter, check_shiftable, has_rotary_positions
from sepllm_core.stats import CacheStats, bytes_per_entry

log = logging.getLogger(__name__)

_SPARE = 64  # extra buffer rows so a decode step never reallocates
DECODE_RENUMBER_SLACK = 64
"""In shifted mode, single-token forwards renumber only once this many positions have been freed:
re-rotating every key at every decode step would cost ~10 % of a step at 2048 entries and add a
bf16 rounding to each key per token. Positions stay contiguous within the recent window; only the
distance to older entries is overstated by fewer than this many positions."""


def quantize_int8(x: torch.Tensor, scale_dtype: torch.dtype = torch.bfloat16) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric absmax int8 quantization of each vector along the last dimension.

    Parameters
    ----------
    x : torch.Tensor, shape ``[..., d]``
    scale_dtype : torch.dtype
        Dtype the scales are stored in (the model's). The codes are computed with the scale as
        stored, so :func:`dequantize_int8` reproduces ``codes * scale`` exactly.

    Returns
    -------
    (torch.Tensor int8 ``[..., d]``, torch.Tensor ``[..., 1]`` in ``scale_dtype``)
        Codes in -127..127 and the scale they multiply.
    """
    xf = x.float()
    tiny = torch.finfo(scale_dtype).tiny  # an all-zero vector still divides safely
    scale = (xf.abs().amax(-1, keepdim=True) / 127).clamp_min(tiny).to(scale_dtype)
    codes = torch.round(xf / scale.float()).clamp_(-127, 127).to(torch.int8)
    return codes, scale


def dequantize_int8(codes: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``codes * scale`` in ``dtype``.

    With a bf16 scale and bf16 output this is the fp32 product rounded once: a code has at most 7
    significant bits and a bf16 scale 8, so their product is exact before the rounding.
    """
    return codes.to(dtype) * scale.to(dtype)


class SepLayer(CacheLayerMixin):
    """One full-attention layer: key/value buffers ``[batch, kv_heads, capacity, head_dim]`` + fill pointer.

    With ``quant="int8"`` the buffers hold int8 codes plus one scale (in the model's dtype) per entry and head
    (``[batch, kv_heads, capacity, 1]``); :meth:`update` returns the entries dequantized to the
    model's dtype, and ``keys``/``values`` are views of the codes.
    """

    is_sliding = False
    is_compileable = False
    is_croppable = False

    def __init__(self, capacity: int, quant: str = "none"):
        super().__init__()
        self.capacity = capacity
        self.quant = quant
        self.length = 0
        self.dtype: torch.dtype | None = None  # the model's dtype for keys and values
        self._key_buf: torch.Tensor | None = None
        self._value_buf: torch.Tensor | None = None
        self._key_scale: torch.Tensor | None = None
        self._value_scale: torch.Tensor | None = None
        self._entry_bytes = 0  # set with the buffers: stats are taken after every forward
        self._full_entry_bytes = 0

    @property
    def quantized(self) -> bool:
        return self.quant == "int8"

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.dtype = key_states.dtype
        b, h, _, dk = key_states.shape
        store = torch.int8 if self.quantized else key_states.dtype
        # zeros, not empty: slots past the fill pointer may be read as finite padding (padded_entries)
        self._key_buf = key_states.new_zeros((b, h, self.capacity, dk), dtype=store)
        self._value_buf = value_states.new_zeros((b, h, self.capacity, value_states.shape[-1]), dtype=store)
        if self.quantized:
            self._key_scale = key_states.new_empty((b, h, self.capacity, 1))
            self._value_scale = value_states.new_empty((b, h, self.capacity, 1))
        self._entry_bytes = sum(buf.shape[0] * buf.shape[1] * buf.shape[-1] * buf.element_size()
                                for buf in self._buffers())
        self._full_entry_bytes = b * h * (dk + value_states.shape[-1]) * key_states.element_size()
        self.is_initialized = True
        self._refresh_views()

    def _buffers(self) -> list[torch.Tensor]:
        return [t for t in (self._key_buf, self._value_buf, self._key_scale, self._value_scale) if t is not None]

    def _refresh_views(self) -> None:
        assert self._key_buf is not None and self._value_buf is not None
        self.keys = self._key_buf[:, :, : self.length]
        self.values = self._value_buf[:, :, : self.length]

    def _grow(self, needed: int) -> None:
        capacity = max(needed + _SPARE, int(self.capacity * 1.5))
        grown = []
        for old in self._buffers():
            new = old.new_empty(old.shape[:2] + (capacity, old.shape[-1]))
            new[:, :, : self.length] = old[:, :, : self.length]
            new[:, :, self.length :] = 0
            grown.append(new)
        self._key_buf, self._value_buf = grown[0], grown[1]
        if self.quantized:
            self._key_scale, self._value_scale = grown[2], grown[3]
        self.capacity = capacity

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``[b, h, q, d]`` states at the fill pointer; return all entries ``[b, h, n, d]``.

        The entries are views of the buffers, or fresh dequantized tensors for an int8 layer.
        """
        if self.quantized:
            key_codes, key_scale, value_codes, value_scale = self.append_codes(key_states, value_states)
            assert self.dtype is not None
            return (dequantize_int8(key_codes, key_scale, self.dtype),
                    dequantize_int8(value_codes, value_scale, self.dtype))
        span = self._reserve(key_states, value_states)
        assert self._key_buf is not None and self._value_buf is not None
        self._key_buf[:, :, span] = key_states
        self._value_buf[:, :, span] = value_states
        self.length = span.stop
        self._refresh_views()
        assert self.keys is not None and self.values is not None
        return self.keys, self.values

    def padded_entries(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[b, h, m, d]`` of the first ``m = min(max(size, length), capacity)`` slots.

        Slots past :attr:`length` hold zeros or evicted entries: finite values that an attention
        masks out. A bf16 layer only (int8 codes need their scales).
        """
        if self.quantized or self._key_buf is None or self._value_buf is None:
            raise ValueError("padded_entries() is for an initialized bf16/fp32 layer")
        m = min(max(size, self.length), self.capacity)
        return self._key_buf[:, :, :m], self._value_buf[:, :, :m]

    def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor) -> slice:
        """Allocate (first call) or grow the buffers for ``key_states``; the slots they will fill."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            self._grow(end)
        return slice(self.length, end)

    def append_codes(self, key_states: torch.Tensor, value_states: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """An int8 layer's :meth:`update` without the dequantization.

        Returns
        -------
        key_codes, key_scale, value_codes, value_scale : views of the buffers
            Codes ``[b, h, n, d]`` (int8) and scales ``[b, h, n, 1]`` of all entries.
        """
        if not self.quantized:
            raise ValueError("append_codes() is for int8 layers (kv_quant='int8')")
        span = self._reserve(key_states, value_states)
        end = span.stop
        assert self._key_buf is not None and self._value_buf is not None and self.dtype is not None
        assert self._key_scale is not None and self._value_scale is not None
        self._key_buf[:, :, span], self._key_scale[:, :, span] = quantize_int8(key_states, self.dtype)
        self._value_buf[:, :, span], self._value_scale[:, :, span] = quantize_int8(value_states, self.dtype)
        self.length = end
        self._refresh_views()
        return (self._key_buf[:, :, :end], self._key_scale[:, :, :end],
                self._value_buf[:, :, :end], self._value_scale[:, :, :end])

    def rotate_keys_(self, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Re-rotate every held key by its own angle (``cos``/``sin`` ``[n, rotary_dim]``, fp32).

        An int8 layer dequantizes, rotates in fp32 and quantizes again (one more rounding per
        renumbering, as a bf16 key gets one).
        """
        if not self.quantized:
            assert self.keys is not None
            RotaryShifter.rotate_(self.keys, cos, sin)
            return
        assert self._key_buf is not None and self._key_scale is not None
        n = self.length
        keys = dequantize_int8(self._key_buf[:, :, :n], self._key_scale[:, :, :n], torch.float32)
        RotaryShifter.rotate_(keys, cos, sin)
        self._key_buf[:, :, :n], self._key_scale[:, :, :n] = quantize_int8(keys, self._key_scale.dtype)

    def move_(self, source: torch.Tensor, target: torch.Tensor, new_length: int) -> None:
        """Copy entries ``source`` into slots ``target`` (disjoint index tensors on the buffers' device),
        then truncate to ``new_length``."""
        if source.numel():
            for buf in self._buffers():
                buf[:, :, target] = buf[:, :, source]
        self.length = new_length
        if self._key_buf is not None:
            self._refresh_views()

    def entry_bytes(self) -> int:
        """Bytes one held entry takes in this layer (codes and scales for int8), 0 before the first update."""
        return self._entry_bytes

    def full_entry_bytes(self) -> int:
        """Bytes one entry would take unquantized, in the model's dtype (the full-cache equivalent's unit)."""
        return self._full_entry_bytes

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1

    def allocated_bytes(self) -> int:
        """Bytes of all buffers."""
        return self.capacity * self._entry_bytes

    def reset(self) -> None:
        self.length = 0
        if self._key_buf is not None:
            self._refresh_views()

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("SepCache layers cannot be cropped; build a new cache instead")


class SlidingLayer(DynamicSlidingWindowLayer):
    """transformers' sliding-window layer, plus an in-place rotation for shifted positions."""

    def rotate_all_(self, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Rotate every cached key by the same angle (``cos``/``sin`` of shape ``[1, rotary_dim]``)."""
        if self.keys is not None and self.keys.numel():
            RotaryShifter.rotate_(self.keys, cos, sin)


class SepCache(Cache):
    """A compressed KV cache with SepLLM, window and full policies behind one interface.

    Parameters
    ----------
    model_config : transformers.PretrainedConfig
        The model's config (its decoder text config is used).
    cache_config : CacheConfig
        Policy, budgets, positions mode.
    separator_table : torch.BoolTensor, shape ``[vocab]``, optional
        From :func:`sepllm_core.separators.separator_table`; required for the ``sepllm`` policy.
    rotary : torch.nn.Module, optional
        The model's rotary embedding module (``model.model.rotary_emb``); built from the config
        when omitted. Used only to re-rotate keys (shifted/auto positions).

    Raises
    ------
    ValueError
        A bounded policy on a model without rotary positions, ``positions="shifted"`` on an
        unsupported rotary variant, a layer type the cache does not handle, or a missing table.
    """

    def __init__(self, model_config: Any, cache_config: CacheConfig,
                 separator_table: torch.Tensor | None = None, rotary: torch.nn.Module | None = None):
        config = model_config.get_text_config(decoder=True)
        model_type = getattr(config, "model_type", "?")
        self.config = cache_config
        if cache_config.policy == "sepllm" and separator_table is None:
            raise ValueError("the sepllm cache policy needs a separator table (sepllm_core.separator_table)")
        if cache_config.bounded and not has_rotary_positions(config):
            raise ValueError(
                f"model type {model_type!r} has no rotary positions, so its cache cannot evict: "
                "use the full cache policy"
            )
        self.separator_table = (separator_table if separator_table is not None
                                else torch.zeros(0, dtype=torch.bool)).to("cpu", torch.bool)
        self.positions_mode = self._resolve_positions(config, cache_config)
        self.shifter = (RotaryShifter(config, rotary) if self.positions_mode != "original" else None)
        self.max_position = int(getattr(config, "max_position_embeddings", 0) or 0)

        layer_types, layer_kwargs = get_layer_types_and_kwargs(config)
        capacity = (cache_config.max_entries if cache_config.bounded else 0) + cache_config.chunk_size + _SPARE
        layers: list[Any] = []
        for index, (layer_type, kwargs) in enumerate(zip(layer_types, layer_kwargs, strict=True)):
            if layer_type == "full_attention":
                layers.append(SepLayer(capacity, cache_config.kv_quant))
            elif layer_type == "sliding_attention":
                layers.append(SlidingLayer(sliding_window=kwargs["sliding_window"]))
            else:
                raise ValueError(
                    f"model type {model_type!r} has a {layer_type!r} layer ({index}) that SepCache does not "
                    "handle: only full and sliding-window attention are supported"
                )
        super().__init__(layers=layers)
        self.layer_types = list(layer_types)
        self._full: list[tuple[int, SepLayer]] = [
            (i, layer) for i, layer in enumerate(layers) if isinstance(layer, SepLayer)]
        self._sliding: list[tuple[int, SlidingLayer]] = [
            (i, layer) for i, layer in enumerate(layers) if isinstance(layer, SlidingLayer)]
        self._own_layers: list[SepLayer | SlidingLayer] = list(layers)

        meta = capacity
        self._ids = torch.zeros(meta, dtype=torch.long)
        self._pos = torch.zeros(meta, dtype=torch.long)  # absolute stream index
        self._rope = torch.zeros(meta, dtype=torch.long)  # position the cached key is rotated to
        self._sep = torch.zeros(meta, dtype=torch.bool)
        self._prot = torch.zeros(meta, dtype=torch.bool)
        self.length = 0  # committed entries per full layer
        self.pending = 0  # tokens pushed for the next forward
        self.tokens_seen = 0
        self.next_position = 0  # rotary position of the next token
        self.evicted = 0
        self._peak_entries = 0
        self._peak_bytes = 0

    @property
    def full_attention_only(self) -> bool:
        """Every layer is a full-attention :class:`SepLayer` (no sliding-window layers)."""
        return not self._sliding

    @staticmethod
    def _resolve_positions(config: Any, cache_config: CacheConfig) -> str:
        if not cache_config.bounded:
            return "original"
        if cache_config.positions == "shifted":
            check_shiftable(config)
            return "shifted"
        if cache_config.positions == "auto":
            try:
                check_shiftable(config)
            except ValueError as exc:
                log.warning("positions='auto' falls back to original positions: %s", exc)
                return "original"
            return "auto"
        return "original"

    # -- the per-forward protocol ------------------------------------------------------------

    def push_tokens(self, input_ids: torch.Tensor, protected: bool | torch.Tensor = False) -> None:
        """Record the ids of the next forward's tokens (before the forward).

        Parameters
        ----------
        input_ids : torch.LongTensor, shape ``[1, q]`` (or ``[q]``)
        protected : bool or torch.BoolTensor of shape ``[1, q]``
            Protected entries are never evicted.
        """
        if self.pending:
            raise RuntimeError("push_tokens called twice: call compress() after each forward")
        ids = input_ids.detach().reshape(-1).to("cpu", torch.long)
        q = ids.numel()
        if q == 0:
            return
        if self.positions_mode == "auto" and self.max_position and self.next_position + q > self.max_position:
            self._renumber()
        self._ensure_meta(self.length + q)
        span = slice(self.length, self.length + q)
        self._ids[span] = ids
        self._pos[span] = torch.arange(self.tokens_seen, self.tokens_seen + q)
        self._rope[span] = torch.arange(self.next_position, self.next_position + q)
        self._sep[span] = lookup_separators(ids, self.separator_table)
        if isinstance(protected, torch.Tensor):
            self._prot[span] = protected.detach().reshape(-1).to("cpu", torch.bool)
        else:
            self._prot[span] = bool(protected)
        self.pending = q

    def next_position_ids(self, q: int) -> torch.Tensor:
        """Position ids ``[1, q]`` for the pushed tokens (absolute or contiguous, per the mode)."""
        if self.pending and q != self.pending:
            raise ValueError(f"next_position_ids({q}) does not match the {self.pending} tokens pushed")
        return torch.arange(self.next_position, self.next_position + q, dtype=torch.long)[None]

    def compress(self) -> CacheStats:
        """Commit the pushed tokens and evict to the budget (after the forward); returns the stats."""
        q = self.pending
        if q == 0:
            return self.stats()
        expected = self.length + q
        for i, layer in self._full:
            got = layer.get_seq_length()
            if got != expected:
                raise RuntimeError(
                    f"layer {i} holds {got} entries, expected {expected}: run the model forward between "
                    "push_tokens() and compress()"
                )
        self.length = expected
        self.pending = 0
        self.tokens_seen += q
        self.next_position += q
        self._peak_entries = max(self._peak_entries, self.length)
        self._peak_bytes = max(self._peak_bytes, self._held_bytes())
        if needs_eviction(self.length, self.config):
            n = self.length
            mask = keep_mask(self._pos[:n], self._sep[:n], self._prot[:n], self.config)
            self._evict(mask)
        gaps = self.next_position - self.length
        if self.positions_mode == "shifted" and gaps > 0 and (q > 1 or gaps >= DECODE_RENUMBER_SLACK):
            self._renumber()
        return self.stats()

    # -- eviction and renumbering ------------------------------------------------------------

    def _evict(self, mask: torch.Tensor) -> None:
        """Keep entries where ``mask`` is True; move tail survivors into the holes."""
        kept = int(mask.sum())
        holes = (~mask[:kept]).nonzero().flatten()
        movers = mask[kept:].nonzero().flatten() + kept
        for meta in (self._ids, self._pos, self._rope, self._sep, self._prot):
            meta[holes] = meta[movers]
        on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        for _, layer in self._full:
            device = layer.device if layer.is_initialized else torch.device("cpu")
            if device not in on_device:
                on_device[device] = (movers.to(device), holes.to(device))
            layer.move_(*on_device[device], kept)
        self.evicted += self.length - kept
        self.length = kept

    def _renumber(self) -> None:
        """Give the kept entries contiguous positions 0..n-1 (reading order); re-rotate their keys."""
        if self.shifter is None:
            return
        n = self.length
        new = torch.empty(n, dtype=torch.long)
        new[torch.argsort(self._pos[:n])] = torch.arange(n)
        delta = new - self._rope[:n]
        shift = n - self.next_position  # uniform shift for the sliding layers' windows
        if bool(delta.any()):
            by_type: dict[str | None, tuple[torch.Tensor, torch.Tensor]] = {}
            for i, layer in self._full:
                if layer.keys is None:
                    continue
                lt = self.layer_types[i]
                if lt not in by_type:
                    by_type[lt] = self.shifter.cos_sin(delta, lt, layer.keys.device)
                layer.rotate_keys_(*by_type[lt])
        if shift and self._sliding:
            by_type = {}
            for i, sliding in self._sliding:
                if sliding.keys is None:
                    continue
                lt = self.layer_types[i]
                if lt not in by_type:
                    by_type[lt] = self.shifter.cos_sin(torch.tensor([shift]), lt, sliding.keys.device)
                sliding.rotate_all_(*by_type[lt])
        self._rope[:n] = new
        self.next_position = n

    def _ensure_meta(self, needed: int) -> None:
        if needed <= self._ids.numel():
            return
        size = max(needed + _SPARE, int(self._ids.numel() * 1.5))
        for name in ("_ids", "_pos", "_rope", "_sep", "_prot"):
            old = getattr(self, name)
            new = torch.zeros(size, dtype=old.dtype)
            new[: old.numel()] = old
            setattr(self, name, new)

    def reset(self) -> None:
        """Forget every token (buffers are kept for reuse)."""
        super().reset()
        self.length = self.pending = self.tokens_seen = self.next_position = self.evicted = 0
        self._peak_entries = self._peak_bytes = 0

    def fork(self) -> SepCache:
        """An independent copy of this cache's state (e.g. to score several continuations).

        The buffers are cloned; the rotary module and the separator table are shared. Call it under
        the same ``torch.inference_mode`` setting the cache was filled under.
        """
        if self.pending:
            raise RuntimeError("fork() between push_tokens() and compress(): compress first")
        memo: dict[int, Any] = {id(self.separator_table): self.separator_table}
        if self.shifter is not None:
            memo[id(self.shifter.rotary)] = self.shifter.rotary
        return copy.deepcopy(self, memo)

    # -- introspection ----------------------------------------------------------------------

    def kept_token_ids(self) -> torch.Tensor:
        """Token ids of the kept entries in reading order, shape ``[n]``."""
        n = self.length
        return self._ids[:n][torch.argsort(self._pos[:n])]

    def kept_positions(self) -> torch.Tensor:
        """Absolute stream indices of the kept entries, ascending, shape ``[n]``."""
        return torch.sort(self._pos[: self.length]).values

    def entry_positions(self) -> torch.Tensor:
        """Absolute stream index of each committed entry in buffer order, shape ``[n]`` (a copy).

        Entry ``i`` of a full-attention layer's ``keys``/``values`` (and column ``i`` of an
        attention over them) is the token read at stream index ``entry_positions()[i]``; buffer
        order is not reading order after an eviction.
        """
        return self._pos[: self.length].clone()

    def kept_rotary_positions(self) -> torch.Tensor:
        """Positions the kept keys are rotated to, in reading order, shape ``[n]``."""
        n = self.length
        return self._rope[:n][torch.argsort(self._pos[:n])]

    def _held_bytes(self) -> int:
        total = 0
        for layer in self._own_layers:
            if isinstance(layer, SepLayer):
                total += layer.entry_bytes() * layer.length
            elif layer.keys is not None:
                total += bytes_per_entry(layer.keys, layer.values) * layer.keys.shape[-2]
        return total

    def stats(self) -> CacheStats:
        """Sizes now, peaks so far, and the full-cache equivalent for the tokens seen."""
        full_equiv = 0
        allocated = 0
        for layer in self._own_layers:
            if isinstance(layer, SlidingLayer):
                per_entry = bytes_per_entry(layer.keys, layer.values)
                full_equiv += per_entry * min(self.tokens_seen, layer.sliding_window - 1)
                allocated += per_entry * (layer.keys.shape[-2] if layer.keys is not None else 0)
            else:
                full_equiv += layer.full_entry_bytes() * self.tokens_seen
                allocated += layer.allocated_bytes()
        held = self._held_bytes()
        entries = self.length if self._full else max(
            (layer.keys.shape[-2] for _, layer in self._sliding if layer.keys is not None), default=0)
        return CacheStats(
            tokens_seen=self.tokens_seen,
            kv_entries=entries,
            kv_bytes=held,
            kv_bytes_full_equivalent=full_equiv,
            kv_entries_peak=max(self._peak_entries, self.length),
            kv_bytes_peak=max(self._peak_bytes, held),
            kv_bytes_allocated=allocated,
            evicted=self.evicted,
        )


def build_cache(model_config: Any, cache_config: CacheConfig, separator_table: torch.Tensor | None = None,
                rotary: torch.nn.Module | None = None) -> SepCache:
    """Build the cache for ``cache_config.policy`` ("sepllm", "window" or "full"); see :class:`SepCache`."""
    return SepCache(model_config, cache_config, separator_table, rotary)
