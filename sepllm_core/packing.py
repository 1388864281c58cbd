"""Weight packing for CPU inference: every bf16 linear layer prepacked for oneDNN, siblings fused, 4-bit copies.

:func:`pack_linears` prepacks a model's linear layers in place for oneDNN (bit-equal outputs, ~2x
faster for one token and up to ~15 % for a prefill chunk on the default model's shapes, no second
copy of the weights). It is an inference-only transform that the app applies when it loads a bf16
model on CPU; training code loads its own, unpacked copy. With ``int4_decode`` it also keeps a
4-bit copy of each packed weight (:mod:`sepllm_core.int4`) for the written-out decode step
(:mod:`sepllm_core.decode_step`), which then streams a quarter of the bytes per token.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any, cast

import torch

from sepllm_core import int4
from sepllm_core.int4 import Int4Weight

log = logging.getLogger(__name__)


LINEAR_OP = torch.ops.mkldnn._linear_pointwise.default
"""oneDNN's linear on a prepacked weight: ``LINEAR_OP(input, weight, bias, "none", [], "")``. The
overload itself, without the packet's lookup: the decode step calls it 121 times per token."""


def packed_linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``input @ weight.T + bias`` for a ``weight`` prepacked by ``mkldnn._reorder_linear_weight``; refuses gradients."""
    if input.requires_grad and torch.is_grad_enabled():
        raise RuntimeError("this model's linear layers are packed for inference (pack_linears): "
                           "load it unpacked to train it")
    return LINEAR_OP(input, weight, bias, "none", [], "")


class PackedLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose weight holds oneDNN's prepacked layout (see :func:`pack_linears`).

    The weight keeps its shape and dtype, so code that reads ``weight.shape``/``.dtype`` still
    works, but its memory is in oneDNN's blocked order: only this forward may use it.
    """

    int4: Int4Weight | None = None
    """The 4-bit copy the decode step reads (``pack_linears(..., int4_decode="on")``), else None."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return packed_linear(input, self.weight, self.bias)


FUSED_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
"""Sibling linear layers that read the same input in the supported decoders (attention, gated MLP)."""


class FusedProjection(torch.nn.Module):
    """Several linear layers that read the same input, computed as one packed matmul.

    The layers it replaces become :class:`ProjectionPart` modules. The first part called with an
    input computes every output; the other parts called with that same tensor take their slice, so
    the model's own forward, which calls ``q_proj(x)``, ``k_proj(x)`` and ``v_proj(x)`` in turn,
    reads the weights once. Outputs are bit-equal to the separate layers (oneDNN reduces each
    output feature alone; tested).

    Parameters
    ----------
    weight : torch.Tensor
        The concatenated ``[sum(sizes), in_features]`` weight, prepacked for oneDNN.
    bias : torch.Tensor, optional, shape ``[sum(sizes)]``
    sizes : tuple of int
        Output features of each part, in order.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, sizes: tuple[int, ...]):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else torch.nn.Parameter(bias, requires_grad=False)
        self.sizes = sizes
        self.int4: Int4Weight | None = None  # the decode step's 4-bit copy, when asked for
        self._input: torch.Tensor | None = None
        self._outputs: tuple[torch.Tensor, ...] = ()
        self._served = 0

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """All parts' outputs side by side, ``[..., sum(sizes)]``."""
        return packed_linear(input, self.weight, self.bias)

    def part(self, input: torch.Tensor, index: int) -> torch.Tensor:
        """Part ``index``'s output for ``input``, computing all parts once per input tensor."""
        if input is not self._input:
            self._outputs = tuple(self(input).split(self.sizes, dim=-1))
            self._input, self._served = input, 0
        out = self._outputs[index]
        self._served |= 1 << index
        if self._served == (1 << len(self.sizes)) - 1:  # every part has its slice: drop the references
            self._input, self._outputs = None, ()
        return out


class ProjectionPart(torch.nn.Module):
    """Stands in for one linear layer of a :class:`FusedProjection` (same call, same output)."""

    def __init__(self, fused: FusedProjection, index: int, in_features: int, out_features: int):
        super().__init__()
        self.fused: FusedProjection
        object.__setattr__(self, "fused", fused)  # not a submodule: its weight is counted once, on the owner
        self.index = index
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.fused.part(input, self.index)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, part {self.index} of a fused layer"


INT4_DECODE = ("off", "on", "on_grid")
"""``pack_linears``'s choices for 4-bit decode weights: never, always, or when already 4-bit (:func:`int4.on_grid`)."""


def pack_linears(model: torch.nn.Module, fuse: bool = True, int4_decode: str = "off") -> int:
    """Prepack every plain bf16 ``nn.Linear`` of a CPU model for oneDNN, in place; returns how many.

    Parameters
    ----------
    model : torch.nn.Module
        An inference model on CPU. Layers whose weight is shared with another parameter (a tied
        output layer and embedding) or that need gradients are left alone, as is everything when
        oneDNN has no bf16 support; other dtypes and devices are skipped.
    fuse : bool
        Also fuse the sibling layers of :data:`FUSED_GROUPS` (q/k/v, gate/up) into one
        :class:`FusedProjection` each, registered on their parent as ``fused_q_proj`` etc.
        (fewer, larger matmuls per decode step; the model's forward is unchanged).
    int4_decode : {"off", "on", "on_grid"}
        ``on``: also keep a 4-bit copy of each packed weight (:mod:`sepllm_core.int4`, in
        ``.int4``) for the written-out decode step; prefill keeps the bf16 weights. ``on_grid``:
        the same only when every such weight is 4-bit already (:func:`int4.on_grid`), so the copy
        is lossless up to bf16 rounding. ``model._sepllm_int4`` says whether copies were made.
        Needs ``fuse`` and a torch with the int4 CPU kernel (``int4.supported()``).

    Notes
    -----
    Outputs are bit-equal to ``F.linear`` (tested) and no memory is added: each weight is replaced
    by its packed copy. The model must not be trained, moved to another device or saved afterwards
    (``model._sepllm_packed`` is set so callers can check).
    """
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return 0
    if int4_decode not in INT4_DECODE:
        raise ValueError(f"int4_decode must be one of {', '.join(INT4_DECODE)}, got {int4_decode!r}")
    if int4_decode == "on" and (not fuse or int4.supported() is not None):
        raise ValueError(f"int4 decode weights need fuse=True and the int4 kernel ({int4.supported()})")
    owners: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        owners[param.data_ptr()] = owners.get(param.data_ptr(), 0) + 1

    def packable(module: Any) -> bool:
        weight = getattr(module, "weight", None)
        return (type(module) is torch.nn.Linear and weight is not None and weight.device.type == "cpu"
                and weight.dtype == torch.bfloat16 and owners.get(weight.data_ptr(), 0) <= 1)

    linears = [cast(torch.nn.Linear, m) for m in model.modules() if packable(m)] if int4_decode != "off" else []
    if int4_decode == "on_grid":
        grid = (fuse and int4.supported() is None and bool(linears)
                and all(int4.on_grid(linear.weight) for linear in linears))
        int4_decode = "on" if grid else "off"
    elif int4_decode == "on" and any(linear.in_features % int4.GROUP_SIZE for linear in linears):
        raise ValueError(f"int4 decode weights need in_features that are multiples of {int4.GROUP_SIZE}")
    with_int4 = int4_decode == "on"

    packed = 0
    mapped = _file_mappings()
    with torch.no_grad():
        for parent in list(model.modules()) if fuse else ():
            for names in FUSED_GROUPS:
                found = [getattr(parent, name, None) for name in names]
                if not all(packable(layer) for layer in found):
                    continue
                layers: list[torch.nn.Linear] = [layer for layer in found if layer is not None]
                if (len({layer.in_features for layer in layers}) != 1
                        or len({layer.bias is None for layer in layers}) != 1):
                    continue
                weight = torch.cat([layer.weight.detach() for layer in layers])
                bias = (None if layers[0].bias is None
                        else torch.cat([layer.bias.detach() for layer in layers]))
                fused = FusedProjection(torch.ops.mkldnn._reorder_linear_weight(weight, 1), bias,
                                        tuple(layer.out_features for layer in layers))
                if with_int4:
                    fused.int4 = int4.pack(weight)
                del weight
                parent.add_module("fused_" + names[0], fused)
                for index, (name, layer) in enumerate(zip(names, layers, strict=True)):
                    _release_file_pages(layer.weight, mapped)
                    setattr(parent, name, ProjectionPart(fused, index, layer.in_features, layer.out_features))
                packed += len(layers)
        for module in model.modules():
            if not packable(module):
                continue
            original = module.weight
            assert isinstance(original, torch.Tensor)
            module.weight = torch.nn.Parameter(torch.ops.mkldnn._reorder_linear_weight(original.detach(), 1),
                                               requires_grad=False)
            copy = int4.pack(original) if with_int4 else None
            _release_file_pages(original, mapped)
            if module.bias is not None:
                module.bias.requires_grad_(False)
            module.__class__ = PackedLinear
            if copy is not None:
                cast(PackedLinear, module).int4 = copy
            packed += 1
    if packed:
        model._sepllm_packed = True  # type: ignore[assignment]
        model._sepllm_int4 = with_int4  # type: ignore[assignment]
    if with_int4:
        _trim_heap()
    log.debug("packed %d linear layers for oneDNN", packed)
    return packed


def _trim_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere nothing).

    Quantizing interleaves large short-lived temporaries with the small int4 copies that stay; in
    about one load in five the freed space stayed resident (+160 MB peak RSS on the default model).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        log.debug("malloc_trim unavailable: freed quantization buffers may stay resident")


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of the safetensors files this process has memory-mapped (Linux; else none)."""
    if not sys.platform.startswith("linux"):
        return []
    ranges = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) >= 6 and fields[-1].endswith(".safetensors"):
                    begin, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((begin, end))
    except OSError:
        return []
    return ranges


def _release_file_pages(tensor: torch.Tensor, mapped: list[tuple[int, int]]) -> None:
    """Drop the whole pages of a replaced, memory-mapped weight from this process's resident set.

    The safetensors file stays mapped while other weights (the embedding) still live in it, so
    the pages a replaced weight was read into would stay counted in RSS next to its packed copy.
    ``MADV_DONTNEED`` on a read-only file mapping only unmaps them: the file is unchanged and the
    pages stay in the OS page cache. Only pages entirely inside the tensor are touched.
    """
    start = tensor.data_ptr()
    if not any(begin <= start < end for begin, end in mapped):
        return
    page = 4096
    first = (start + page - 1) // page * page
    last = (start + tensor.numel() * tensor.element_size()) // page * page
    if last <= first:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), 4)  # MADV_DONTNEED
    except (OSError, AttributeError):
        log.debug("madvise unavailable: a packed model's replaced weights stay resident")
