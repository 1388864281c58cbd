"""4-bit weights for the CPU decode step: group-wise int4 with a scale and a zero point per 32 inputs.

On the default model a CPU decode step streams every weight once per token, and at short
contexts that is most of the step (~9.5 of ~16 ms at 512 tokens of context, one thread). In
4 bits the same matmuls stream a quarter of the bytes: torch's ``_weight_int4pack_mm_for_cpu``
kernel took 5.1 ms for the default model's decoder and head against 9.5 ms for oneDNN's packed
bf16 (one thread, each weight read once per step, as in decode). For a prefill chunk the kernel
is ~3x *slower* than bf16 (512 rows), so only the decode step uses these weights; prefill keeps
the model's bf16 weights (the int4 copy costs 0.625 byte per parameter on top of them: half a
byte of code, and a bf16 scale and zero, 4 bytes, per 32).

The format is llama.cpp's Q4_1 in torch's layout: each run of :data:`GROUP_SIZE` inputs of an
output feature has a scale ``s`` and a zero ``z`` (bf16) and codes ``q`` in 0..15, and the weight
it stands for is ``(q - 8) * s + z``. Codes are rounded to nearest (no calibration data). The
output layer stays bf16: the default model's tied embedding is not 4-bit in its GGUF, and in 4 bits
it cost 7 % decode perplexity (the decoder's linear layers alone: 0.1 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GROUP_SIZE = 32
"""Inputs per scale and zero (llama.cpp's Q4_0/Q4_1 use 32 too)."""


def supported() -> str | None:
    """Why int4 decode weights are unavailable in this torch build (None when they are)."""
    for name in ("_weight_int4pack_mm_for_cpu", "_convert_weight_to_int4pack_for_cpu"):
        if not hasattr(torch.ops.aten, name):
            return f"this torch build has no aten.{name}"
    return None


@dataclass(frozen=True)
class Int4Weight:
    """A ``[out_features, in_features]`` weight in 4 bits, for :func:`int4_linear`.

    Attributes
    ----------
    packed : torch.Tensor uint8, shape ``[out_features, in_features // 2]``
        Codes in the kernel's packed order (``aten._convert_weight_to_int4pack_for_cpu``).
    scales_zeros : torch.Tensor bf16, shape ``[in_features // GROUP_SIZE, out_features, 2]``
    """

    packed: torch.Tensor
    scales_zeros: torch.Tensor
    out_features: int
    in_features: int
    group_size: int = GROUP_SIZE

    @property
    def nbytes(self) -> int:
        return self.packed.numel() * self.packed.element_size() + \
            self.scales_zeros.numel() * self.scales_zeros.element_size()


def quantize(weight: torch.Tensor, group_size: int = GROUP_SIZE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Round ``weight`` ``[N, K]`` to int4 per group of ``group_size`` inputs.

    Returns
    -------
    codes : torch.Tensor int32, shape ``[N, K]``, values 0..15
    scales, zeros : torch.Tensor bf16, shape ``[N, K // group_size]``
        The weight the codes stand for is ``(codes - 8) * scale + zero``, group by group.
    """
    n, k = weight.shape
    if k % group_size:
        raise ValueError(f"in_features {k} is not a multiple of the int4 group size {group_size}")
    groups = weight.detach().float().reshape(n, k // group_size, group_size)
    low, high = groups.amin(-1), groups.amax(-1)
    # the kernel reads scale and zero in bf16: round them first, then pick codes against the rounded pair
    scales = ((high - low) / 15).clamp(min=1e-8).to(torch.bfloat16)
    zeros = (low + 8 * scales.float()).to(torch.bfloat16)
    codes = torch.round((groups - zeros.float()[..., None]) / scales.float()[..., None] + 8).clamp(0, 15)
    return codes.reshape(n, k).to(torch.int32), scales, zeros


def on_grid(weight: torch.Tensor, group_size: int = GROUP_SIZE) -> bool:
    """True when every group of ``group_size`` inputs holds at most 16 distinct values.

    Such a weight was 4-bit already (e.g. dequantized from a Q4_0/Q4_1 GGUF, as the default model
    is), so :func:`quantize` only re-finds its grid: it loses the bf16 rounding of the grid's scale
    and zero, not information. On the default model the decode step's logits then agree with the
    bf16 step's on the top token 97.5 % of the time (KL 0.003 nats; docs/BENCHMARKS.md).
    """
    n, k = weight.shape
    if k % group_size:
        return False
    ordered = weight.detach().reshape(-1, group_size).sort(dim=-1).values
    distinct = (ordered[:, 1:] != ordered[:, :-1]).sum(dim=-1) + 1
    return bool((distinct <= 16).all())


def dequantize(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:
    """The fp32 ``[N, K]`` weight that :func:`quantize`'s output stands for (the reference in tests)."""
    n, k = codes.shape
    groups = codes.float().reshape(n, scales.shape[1], -1)
    return ((groups - 8) * scales.float()[..., None] + zeros.float()[..., None]).reshape(n, k)


def pack(weight: torch.Tensor, group_size: int = GROUP_SIZE) -> Int4Weight:
    """Quantize a bf16 (or fp32) ``[N, K]`` weight and pack it for :func:`int4_linear`."""
    codes, scales, zeros = quantize(weight, group_size)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    scales_zeros = torch.stack((scales, zeros), dim=-1).transpose(0, 1).contiguous()  # [K/g, N, 2]
    return Int4Weight(packed, scales_zeros, weight.shape[0], weight.shape[1], group_size)


def int4_linear(input: torch.Tensor, weight: Int4Weight, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``input @ w.T + bias`` for bf16 ``input`` ``[..., in_features]``; returns ``[..., out_features]`` bf16."""
    flat = input.reshape(-1, weight.in_features)
    out = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, weight.packed, weight.group_size, weight.scales_zeros)
    out = out.view(*input.shape[:-1], weight.out_features)
    return out if bias is None else out + bias
