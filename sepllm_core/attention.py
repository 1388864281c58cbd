"""Attention mass that a span of query tokens, fed after a cached document, pays to each cache entry.

The span is read with one ordinary forward through the cache (so its keys are rotated to the
positions the cache hands out, original or shifted, and int8 entries are dequantized by the cache
as in any forward), with the model's own eager attention switched on for that forward only and a
hook on each measured layer that keeps the softmax weights over the entries held before the span.
Nothing is hooked outside :func:`attend_span`: prefill and decode never pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from sepllm_core.cache import SepCache

HEAD_REDUCTIONS = ("sum", "mean", "none")


@dataclass(frozen=True)
class EntryAttention:
    """What a query span paid to the entries held in the cache before it.

    Attributes
    ----------
    positions : torch.LongTensor, shape ``[n]``
        Absolute stream index of each entry (the token's index in everything the cache has read),
        ascending: column ``j`` of :attr:`mass` is the token read at ``positions[j]``.
    mass : torch.FloatTensor, shape ``[L, n]`` (heads reduced) or ``[L, H, n]`` (``heads="none"``)
        Softmax weight the span's tokens put on each entry, summed over the span's tokens, per
        measured layer (and per query head). Per query token and head the weights over the
        entries and the span's own earlier tokens sum to 1.
    layers : tuple of int
        Decoder layer index of each row of :attr:`mass`.
    query_tokens : int
        Length of the span.
    heads : str
        How heads were reduced: "sum", "mean" or "none".
    """

    positions: torch.Tensor
    mass: torch.Tensor
    layers: tuple[int, ...]
    query_tokens: int
    heads: str

    def combined(self, layers: Sequence[int] | None = None) -> torch.Tensor:
        """Mass per entry averaged over ``layers`` (default: all measured), heads summed, shape ``[n]``."""
        rows = list(range(len(self.layers))) if layers is None else [self.layers.index(i) for i in layers]
        mass = self.mass[rows]
        if mass.dim() == 3:
            mass = mass.sum(dim=1)
        return mass.mean(dim=0)


def attention_modules(model: torch.nn.Module) -> dict[int, torch.nn.Module]:
    """Decoder layer index -> its self-attention module (any module with ``layer_idx`` named ``*self_attn``)."""
    found: dict[int, torch.nn.Module] = {}
    for name, module in model.named_modules():
        if name.endswith("self_attn") and isinstance(getattr(module, "layer_idx", None), int):
            found[int(module.layer_idx)] = module
    if not found:
        raise ValueError(f"{type(model).__name__} has no '*.self_attn' modules with a layer_idx: "
                         "attention cannot be measured on this architecture")
    return found


@contextmanager
def _eager_attention(model: torch.nn.Module, modules: Sequence[torch.nn.Module]) -> Iterator[None]:
    """The model's eager attention (which returns its weights) for the duration of the block."""
    candidates: list[Any] = [model.config, *(getattr(m, "config", None) for m in modules)]
    configs = {id(c): c for c in candidates if c is not None}
    before = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = "eager"
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = before[key]


def attend_span(model: torch.nn.Module, cache: SepCache, ids: Sequence[int] | torch.Tensor, *,
                heads: str = "sum", layers: Sequence[int] | None = None, protect: bool = True
                ) -> tuple[EntryAttention, torch.Tensor]:
    """Feed ``ids`` through ``cache`` in one forward and measure their attention to the held entries.

    Parameters
    ----------
    model : transformers PreTrainedModel
        A causal LM whose attention modules follow transformers' attention interface (Llama,
        Qwen2/3, Mistral, Gemma 2/3, Phi-3 ...).
    cache : SepCache
        The cache that read the document (any policy and positions mode, bf16 or int8 entries),
        between forwards (nothing pushed). The span is appended to it like any fed text, and
        compressed afterwards, so decoding can go on from it.
    ids : list of int or torch.LongTensor, shape ``[q]`` or ``[1, q]``
        The query span (e.g. the summary instruction placed after the document).
    heads : {"sum", "mean", "none"}
        Reduce the query heads by sum or mean, or keep them (``mass`` ``[L, H, n]``). Grouped
        key/value heads are handled by the model's attention (each query head reads its group).
    layers : sequence of int, optional
        Decoder layers to measure; default every full-attention layer. Sliding-window layers hold
        only the last tokens and cannot be measured.
    protect : bool
        Keep the span's entries in the cache forever (an instruction).

    Returns
    -------
    (EntryAttention, torch.FloatTensor of shape ``[vocab]``)
        The measurement, and the logits after the span's last token (fp32), from which a
        generation can continue.

    Raises
    ------
    ValueError
        An empty span, an unknown ``heads``, a layer that is not a full-attention layer, or a
        model without recognisable attention modules.
    """
    if heads not in HEAD_REDUCTIONS:
        raise ValueError(f"heads must be one of {', '.join(HEAD_REDUCTIONS)}, got {heads!r}")
    tokens = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    if tokens.shape[1] == 0:
        raise ValueError("attend_span needs at least one query token")
    full = [i for i, kind in enumerate(cache.layer_types) if kind == "full_attention"]
    wanted = list(full if layers is None else layers)
    bad = [i for i in wanted if i not in full]
    if bad:
        raise ValueError(f"layers {bad} are not full-attention layers of this model (those are {full})")
    modules = attention_modules(model)
    missing = [i for i in wanted if i not in modules]
    if missing:
        raise ValueError(f"no attention module found for layers {missing}")
    slots = cache.entry_positions()  # [n] buffer order
    n = slots.numel()
    order = torch.argsort(slots)
    captured: dict[int, torch.Tensor] = {}

    def hook_for(layer: int) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError(f"layer {layer}'s attention returned no weights under eager attention")
            per_head = weights[0, :, :, :n].float().sum(dim=1)  # [H, n]: summed over the span's tokens
            captured[layer] = per_head[:, order.to(per_head.device)].cpu()
        return hook

    device = next(model.parameters()).device
    handles = [modules[i].register_forward_hook(hook_for(i)) for i in wanted]
    try:
        with torch.inference_mode(), _eager_attention(model, [modules[i] for i in wanted]):
            cache.push_tokens(tokens, protected=protect)
            position_ids = cache.next_position_ids(tokens.shape[1]).to(device)
            out = model(input_ids=tokens.to(device), position_ids=position_ids, cache=cache, use_cache=True,
                        logits_to_keep=1)
            cache.compress()
    finally:
        for handle in handles:
            handle.remove()
    mass = torch.stack([captured[i] for i in wanted])  # [L, H, n]
    if heads == "sum":
        mass = mass.sum(dim=1)
    elif heads == "mean":
        mass = mass.mean(dim=1)
    measured = EntryAttention(positions=slots[order], mass=mass, layers=tuple(wanted),
                              query_tokens=int(tokens.shape[1]), heads=heads)
    return measured, out.logits[0, -1].float()
