"""Route attention: sdpa that also records the attention the routed query rows pay their fact separators."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch

from sepllm_core.adapt.losses import route_loss_of

#: Attention implementation of the route loss: sdpa for the outputs, plus the attention
#: probabilities of only the routed query rows (eager attention would materialize every [T, T] map).
ROUTE_ATTENTION = "sepllm_route_sdpa"


@dataclass
class _RouteCapture:
    """The routed queries of one forward and the attention they pay their separators, layer by layer.

    ``rows``, ``queries``, ``separators`` are LongTensor [n]: batch row, query position (the one
    that predicts the first value token) and the fact's separator position of each route.
    """

    rows: torch.Tensor
    queries: torch.Tensor
    separators: torch.Tensor
    first_layer: int
    picked: list[torch.Tensor] = field(default_factory=list)  # per counted layer: [n, H]


_capture = threading.local()


def _route_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                **kwargs: Any) -> tuple[torch.Tensor, None]:
    """sdpa attention that also records, while a :class:`_RouteCapture` is active, the routed rows' probabilities.

    ``query`` is [B, H, T, d], ``key`` and ``value`` [B, KV, T, d] (grouped heads), ``attention_mask``
    boolean or additive [B, 1, T, T]. The recorded probabilities keep their graph, so the route loss
    trains the queries and keys like eager attention would, at the cost of n rows instead of T.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                       scaling=scaling, **kwargs)
    capture: _RouteCapture | None = getattr(_capture, "active", None)
    if capture is not None and getattr(module, "layer_idx", 0) >= capture.first_layer:
        groups = query.shape[1] // key.shape[1]
        keys = key[capture.rows].repeat_interleave(groups, dim=1).float()  # (n, H, T, d)
        queries = query[capture.rows, :, capture.queries].float()  # (n, H, d)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        scores = torch.einsum("nhd,nhtd->nht", queries, keys) * scale  # (n, H, T)
        if attention_mask is not None:
            allowed = attention_mask[capture.rows, 0, capture.queries]  # (n, T)
            if allowed.dtype == torch.bool:
                scores = scores.masked_fill(~allowed[:, None, :], float("-inf"))
            else:
                scores = scores + allowed[:, None, :].float()
        else:
            later = torch.arange(scores.shape[-1], device=scores.device)[None, :] > capture.queries[:, None]
            scores = scores.masked_fill(later[:, None, :], float("-inf"))
        probabilities = scores.softmax(dim=-1)  # (n, H, T)
        index = torch.arange(probabilities.shape[0], device=probabilities.device)
        capture.picked.append(probabilities[index, :, capture.separators])  # (n, H)
    return output, None


def use_route_attention(model: Any) -> None:
    """Switch ``model`` (a transformers model or PeftModel) to :data:`ROUTE_ATTENTION`, registering it once."""
    from transformers import AttentionInterface

    AttentionInterface.register(ROUTE_ATTENTION, _route_sdpa)
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        ALL_MASK_ATTENTION_FUNCTIONS.register(ROUTE_ATTENTION, sdpa_mask)  # masks built by the model itself
    except ImportError:  # older transformers: the 4D masks we pass are used as they are
        pass
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(ROUTE_ATTENTION)


def captured_route_loss(model: Any, routes: torch.Tensor, first_layer: float, **forward: Any
                        ) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Run ``model(**forward)`` (set to :data:`ROUTE_ATTENTION`) and return (output, route loss, attention).

    The same quantities as :func:`route_loss` on eager attention probabilities, from only the
    routed query rows. ``routes`` is LongTensor [B, T] as there; with no route the loss is 0.
    """
    rows, targets = (routes >= 0).nonzero(as_tuple=True)  # (n,), (n,)
    layers = int(getattr(model.config, "num_hidden_layers", 0))
    capture = _RouteCapture(rows=rows, queries=targets - 1, separators=routes[rows, targets],
                            first_layer=int(first_layer * layers))
    _capture.active = capture if rows.numel() else None
    try:
        output = model(**forward)
    finally:
        _capture.active = None
    if not capture.picked:
        zero = torch.zeros((), dtype=torch.float32, device=routes.device)
        return output, zero, zero
    return (output, *route_loss_of(torch.stack(capture.picked, dim=1)))  # (n, L_upper, H)
