"""The streaming step every reader of a cache shares: push the ids, forward, compress; and chunked reading.

A ``sepllm_core`` cache must learn a forward's token ids before the forward (``push_tokens``) and
commits and evicts after it (``compress``); :func:`forward_chunk` is that step, and
:func:`stream_chunks` reads a long run of ids through it chunk by chunk. ``Session`` (prefill and
decode), recall, perplexity, the adaptation evaluation and the tests all go through these two.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def forward_chunk(model: Any, cache: Any, ids: Sequence[int] | torch.Tensor, *,
                  protected: bool | torch.Tensor = False, logits_to_keep: int = 1, fast: Any = None,
                  hidden: bool = False, device: torch.device | None = None) -> torch.Tensor:
    """One forward of ``ids`` through ``cache``: push the ids, run the model, compress.

    Parameters
    ----------
    model : transformers PreTrainedModel
        A causal LM.
    cache : SepCache or transformers Cache
        A ``sepllm_core`` cache; a plain transformers cache without ``push_tokens`` (e.g.
        ``DynamicCache``) is read as a full cache with absolute positions.
    ids : list of int or torch.LongTensor, shape ``[q]`` or ``[1, q]``
    protected : bool or torch.BoolTensor ``[1, q]``
        These entries are never evicted.
    logits_to_keep : int
        Logits of the last that many positions; 0 keeps all ``q``.
    fast : FastDecode, optional
        A one-token step goes through :meth:`FastDecode.forward` (the decode path of a Session).
    hidden : bool
        Return the decoder's final hidden states instead of logits (cheap for large vocabularies).
    device : torch.device, optional
        The model's device (looked up when omitted).

    Returns
    -------
    torch.Tensor, fp32, shape ``[k, vocab]`` (``[k, hidden]`` with ``hidden``)
        ``k`` is ``logits_to_keep`` (``q`` when 0); a ``fast`` step gives ``[1, vocab]``.
    """
    if device is None:
        device = next(model.parameters()).device
    input_ids = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1).to(device)  # [1, q]
    q = input_ids.shape[1]
    with torch.inference_mode():
        streaming = hasattr(cache, "push_tokens")
        if streaming:
            cache.push_tokens(input_ids, protected=protected)
            position_ids = cache.next_position_ids(q).to(device)
        else:
            start = cache.get_seq_length()
            position_ids = torch.arange(start, start + q, device=device).unsqueeze(0)  # [1, q]
        if fast is not None and q == 1 and not hidden:
            out = fast.forward(input_ids, position_ids, cache)[None]  # [1, vocab]
        elif hidden:
            states = model.get_decoder()(input_ids=input_ids, position_ids=position_ids, cache=cache,
                                         use_cache=True).last_hidden_state[0]  # [q, hidden]
            out = (states if logits_to_keep == 0 else states[-logits_to_keep:]).float()
        else:
            out = model(input_ids=input_ids, position_ids=position_ids, cache=cache, use_cache=True,
                        logits_to_keep=logits_to_keep).logits[0].float()  # [k, vocab]
        if streaming:
            cache.compress()
    return out


@dataclass(frozen=True)
class Chunk:
    """One chunk read by :func:`stream_chunks`: where it starts, its ids ``[q]`` and its output."""

    start: int
    ids: torch.Tensor
    logits: torch.Tensor  # fp32 [k, vocab] (hidden states with ``hidden``)

    @property
    def end(self) -> int:
        return self.start + self.ids.numel()


def stream_chunks(model: Any, cache: Any, ids: Sequence[int] | torch.Tensor, chunk_size: int, *,
                  protected: bool = False, logits_to_keep: int = 1, hidden: bool = False,
                  cancel: threading.Event | None = None) -> Iterator[Chunk]:
    """Read ``ids`` through ``cache`` in chunks of ``chunk_size``, one :func:`forward_chunk` each.

    Yields each :class:`Chunk` after its forward and compression. When ``cancel`` is set before a
    chunk, reading stops there (the last yielded chunk's ``end`` tells how far it got).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    tokens = torch.as_tensor(ids, dtype=torch.long).reshape(-1)  # [n]
    device = next(model.parameters()).device
    for start in range(0, tokens.numel(), chunk_size):
        if cancel is not None and cancel.is_set():
            return
        piece = tokens[start:start + chunk_size]
        logits = forward_chunk(model, cache, piece, protected=protected, logits_to_keep=logits_to_keep,
                               hidden=hidden, device=device)
        yield Chunk(start=start, ids=piece, logits=logits)
