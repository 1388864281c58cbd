"""A one-token forward of a Llama-family decoder written out as plain tensor operations.

A decode step of a small model on CPU is short enough that the framework around the matmuls
shows: transformers' modules, mask building, kwargs plumbing and per-layer dispatch cost about as
much as the attention itself on the default model. :class:`DecodeStep` does the same arithmetic
as the model's own forward for one token (same operations, same order, same dtypes, so the logits
are bit-equal; tested), reading the q/k/v and gate/up weights through the fused projections of
:func:`sepllm_core.packing.pack_linears` and attending with
:func:`sepllm_core.fast_decode.decode_attention`. Per layer::

    h = rms_norm(x);  q, k, v = qkv(h);  q, k = rotate(q, k)   # (+ q/k norms on Qwen3)
    keys, values = cache_layer.update(k, v)
    x = x + o_proj(attention(q, keys, values))
    h = rms_norm(x);  g, u = gate_up(h);  x = x + down_proj(silu(g) * u)

Over int8 cache entries (``kv_quant="int8"``) the attention reads the codes directly
(:func:`sepllm_core.fast_decode.decode_attention_int8`), so there the logits match the model's forward
within int8 rounding rather than bit for bit.

It covers the architectures whose layers are exactly that (:data:`ARCHITECTURES`) when every
cache layer is a full-attention :class:`~sepllm_core.cache.SepLayer`; anything else keeps the
model's own forward (:meth:`DecodeStep.unsupported` says why).
"""

from __future__ import annotations

from typing import Any

import torch

from sepllm_core.fast_decode import decode_attention, decode_attention_int8
from sepllm_core.int4 import int4_linear
from sepllm_core.packing import LINEAR_OP, FusedProjection, PackedLinear

ARCHITECTURES = ("llama", "qwen2", "qwen3", "mistral")
"""Model types whose decoder layer is pre-norm attention + gated SiLU MLP with RMSNorm."""

_NORMS = ("LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "MistralRMSNorm")


ENTRY_BUCKET = 32
"""The attention reads the cache in multiples of this many entries (the rest masked out). oneDNN
builds a matmul primitive per shape, and a cache that grows by one entry per token made every step
build two: decode at 512 tokens of context ran 5-9 % faster with buckets of 16-64 entries. A cache
cycling between its cut-back size and its cap reuses its shapes anyway and pays the padding (~1 %
slower at 2k). Logits are unchanged (bit-equal, tested)."""

def _packed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return LINEAR_OP(x, weight, bias, "none", [], "")


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' Llama RMSNorm (fp32 statistics, weight applied in the model dtype), as one fused op."""
    return weight * torch.rms_norm(x.to(torch.float32), (x.shape[-1],), eps=eps).to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` with one roll instead of two slices, a negation and a cat.

    ``rotate_half(x) = cat(-x2, x1)`` and ``roll(x, half) = cat(x2, x1)``, so with ``signed_sin =
    cat(-sin1, sin2)`` each product is the same number (negation is exact): bit-equal.
    """
    return x * cos + torch.roll(x, x.shape[-1] // 2, -1) * signed_sin


def _signed_sin(sin: torch.Tensor) -> torch.Tensor:
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


class DecodeStep:
    """The one-token forward of a supported decoder, for :class:`~sepllm_core.fast_decode.FastDecode`.

    Parameters
    ----------
    model : transformers PreTrainedModel
        A model packed by :func:`~sepllm_core.packing.pack_linears` (with ``fuse=True``);
        check :meth:`unsupported` first.
    """

    def __init__(self, model: Any):
        reason = self.unsupported(model)
        if reason is not None:
            raise ValueError(f"no written-out decode step for this model: {reason}")
        decoder = model.get_decoder()
        config = model.config
        self.embed = decoder.embed_tokens
        self.rotary = decoder.rotary_emb
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.final_norm = (decoder.norm.weight, decoder.norm.variance_epsilon)
        #: Weights read in 4 bits (``pack_linears(..., int4_decode="on")``): logits then differ from
        #: the model's forward by the int4 rounding of the weights, not bit for bit.
        self.int4 = bool(getattr(model, "_sepllm_int4", False))
        self.linear = int4_linear if self.int4 else _packed_linear
        # Plain tensors and numbers per layer: module calls and attribute lookups cost ~1 ms per
        # token on the default model. The weights are the model's own (packed) tensors, so build
        # the step after the weights are final (FastDecode is built per Session).
        self.layers: list[tuple[Any, ...]] = []
        for layer in decoder.layers:
            attn, mlp = layer.self_attn, layer.mlp
            q_norm, k_norm = getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)
            qkv, gate_up, o_proj, down = attn.fused_q_proj, mlp.fused_gate_proj, attn.o_proj, mlp.down_proj
            weights = [(p.int4 if self.int4 else p.weight) for p in (qkv, o_proj, gate_up, down)]
            if any(w is None for w in weights):
                raise ValueError(f"layer {len(self.layers)} has no int4 copy of its weights (pack_linears)")
            self.layers.append((
                layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon,
                weights[0], qkv.bias, weights[1], o_proj.bias,
                None if q_norm is None else (q_norm.weight, q_norm.variance_epsilon),
                None if k_norm is None else (k_norm.weight, k_norm.variance_epsilon),
                attn.scaling, attn.head_dim,
                layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon,
                weights[2], gate_up.bias, gate_up.sizes[0], weights[3], down.bias,
            ))

    @staticmethod
    def unsupported(model: Any) -> str | None:
        """Why this model has no written-out step (None when it has one)."""
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", None)
        if model_type not in ARCHITECTURES:
            return f"model type {model_type!r} (written out for {', '.join(ARCHITECTURES)})"
        if not getattr(model, "_sepllm_packed", False):
            return "linear layers not packed (pack_linears)"
        if getattr(config, "hidden_act", None) != "silu":
            return f"activation {getattr(config, 'hidden_act', None)!r}"
        if any(t != "full_attention" for t in getattr(config, "layer_types", None) or ()):
            return "sliding-window layers"
        decoder = model.get_decoder() if callable(getattr(model, "get_decoder", None)) else None
        if decoder is None or not all(hasattr(decoder, name) for name in ("embed_tokens", "rotary_emb", "norm", "layers")):
            return "decoder without embed_tokens/rotary_emb/norm/layers"
        for index, layer in enumerate(decoder.layers):
            attn: Any = getattr(layer, "self_attn", None)
            mlp: Any = getattr(layer, "mlp", None)
            if not (isinstance(getattr(attn, "fused_q_proj", None), FusedProjection)
                    and isinstance(getattr(mlp, "fused_gate_proj", None), FusedProjection)):
                return f"layer {index} has no fused q/k/v and gate/up projections"
            d = getattr(attn, "head_dim", 0)
            heads = getattr(config, "num_attention_heads", 0)
            kv_heads = getattr(config, "num_key_value_heads", 0)
            sizes = attn.fused_q_proj.sizes
            if sizes != (heads * d, kv_heads * d, kv_heads * d):
                return f"layer {index}'s q/k/v sizes {sizes} do not match the heads"
            if not (isinstance(getattr(attn, "o_proj", None), PackedLinear)
                    and isinstance(getattr(mlp, "down_proj", None), PackedLinear)):
                return f"layer {index}'s o_proj/down_proj is not packed"
            norms = [layer.input_layernorm, layer.post_attention_layernorm, decoder.norm]
            norms += [n for n in (getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)) if n is not None]
            if any(type(n).__name__ not in _NORMS for n in norms):
                return f"layer {index} has a norm other than {', '.join(_NORMS)}"
        return None

    def __call__(self, input_ids: torch.Tensor, position_ids: torch.Tensor, cache: Any) -> torch.Tensor:
        """Forward ``input_ids`` ``[1, 1]`` at ``position_ids`` ``[1, 1]``; returns the hidden state ``[1, hidden]``.

        ``cache`` must be a :class:`~sepllm_core.cache.SepCache` whose layers are all full-attention
        (the caller checks); the new key and value are appended to each layer.
        """
        x = self.embed(input_ids)
        cos, sin = self.rotary(x, position_ids)
        cos, sin = cos.unsqueeze(1), _signed_sin(sin.unsqueeze(1))
        h_q, h_kv = self.heads, self.kv_heads
        silu = torch._C._nn.silu  # F.silu without its Python wrapper
        linear = self.linear
        for layer, (norm1, eps1, qkv, qkv_bias, o_proj, o_bias, q_norm, k_norm, scaling, d, norm2, eps2,
                    gate_up, gate_up_bias, inter, down, down_bias) in zip(cache.layers, self.layers, strict=True):
            projected = linear(_rms_norm(x, norm1, eps1), qkv, qkv_bias)
            # [1, 1, (h_q + 2 h_kv) d]: q, k and v heads side by side; heads stay on dim 2 (no copies)
            v = projected[..., (h_q + h_kv) * d:].view(1, 1, h_kv, d).transpose(1, 2)
            if q_norm is None:  # rotate the q and k heads together (elementwise, so the same numbers)
                qk = _rotate(projected[..., :(h_q + h_kv) * d].view(1, 1, h_q + h_kv, d), cos, sin)
                q, k = qk[:, :, :h_q], qk[:, :, h_q:]
            else:
                q = _rotate(_rms_norm(projected[..., :h_q * d].view(1, 1, h_q, d), *q_norm), cos, sin)
                k = _rotate(_rms_norm(projected[..., h_q * d:(h_q + h_kv) * d].view(1, 1, h_kv, d), *k_norm), cos, sin)
            q, k = q.transpose(1, 2), k.transpose(1, 2)  # [1, heads, 1, d] views
            if layer.quantized:
                key_codes, key_scale, value_codes, value_scale = layer.append_codes(k, v)
                attn = decode_attention_int8(q, key_codes, key_scale, value_codes, value_scale, scaling)
            else:
                layer.update(k, v)
                n = layer.length
                keys, values = layer.padded_entries(-(-n // ENTRY_BUCKET) * ENTRY_BUCKET)
                attn = decode_attention(q, keys, values, None, scaling, valid=n)
            x = x + linear(attn.reshape(1, 1, h_q * d), o_proj, o_bias)
            g_u = linear(_rms_norm(x, norm2, eps2), gate_up, gate_up_bias)
            x = x + linear(silu(g_u[..., :inter]) * g_u[..., inter:], down, down_bias)
        return _rms_norm(x, *self.final_norm)[:, -1]
