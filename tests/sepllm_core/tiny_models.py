"""Tiny random-weight causal LMs of several architectures, built offline from configs (no hub)."""

from __future__ import annotations

import torch
import transformers

from sepllm_core.stream import forward_chunk, stream_chunks

VOCAB = 128
SEPARATOR_IDS = (3, 10, 17, 24, 31)  # arbitrary ids playing '.' ',' '\n' ... in the tiny vocab

_COMMON = dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
               vocab_size=VOCAB, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0)

ARCHITECTURES: dict[str, tuple[str, str, dict]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               {"head_dim": 16, "sliding_window": 8}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 16, "sliding_window": 8}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM",
             {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}}),
}
"""name -> (config class, model class, overrides). Gemma layers alternate sliding (window 8) and full."""

SLIDING = ("gemma2", "gemma3")


def tiny_model(arch: str = "llama", layers: int = 2, dtype: torch.dtype = torch.float32,
               seed: int = 0, **overrides) -> torch.nn.Module:
    """A random-weight ``arch`` model with ``layers`` decoder layers, eval mode, on CPU."""
    config_name, model_name, extra = ARCHITECTURES[arch]
    kwargs = {**_COMMON, **extra, "num_hidden_layers": layers, **overrides}
    if arch in SLIDING and "layer_types" not in overrides:
        kwargs["layer_types"] = [("sliding_attention" if i % 2 == 0 else "full_attention") for i in range(layers)]
    config = getattr(transformers, config_name)(**kwargs)
    config._attn_implementation = "sdpa" if arch not in SLIDING else "eager"
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).to(dtype).eval()
    return model


def separator_table_for_tiny() -> torch.Tensor:
    """A ``[VOCAB]`` table marking :data:`SEPARATOR_IDS` as separators."""
    table = torch.zeros(VOCAB, dtype=torch.bool)
    table[list(SEPARATOR_IDS)] = True
    return table


def random_ids(n: int, seed: int = 0) -> torch.Tensor:
    """``[1, n]`` token ids in 4..VOCAB-1 (no bos/eos/pad), about one in five a separator."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (1, n), generator=gen)
    seps = torch.tensor(SEPARATOR_IDS)[torch.randint(0, len(SEPARATOR_IDS), (1, n), generator=gen)]
    pick = torch.rand(1, n, generator=gen) < 0.2
    return torch.where(pick, seps, ids)


def run_chunks(model: torch.nn.Module, cache, ids: torch.Tensor, chunk: int, protected=False,
               before_chunk=None, hidden: bool = False) -> torch.Tensor:
    """Stream ``ids`` ``[1, n]`` through ``cache`` in chunks; return all logits ``[1, n, vocab]`` (fp32).

    ``before_chunk(cache)`` is called before each chunk is pushed (to record the kept set).
    ``hidden=True`` returns the final hidden states ``[1, n, hidden]`` instead (cheap for big vocabularies).
    Every chunk goes through :func:`sepllm_core.stream.stream_chunks`, the path the library reads with.
    """
    n = ids.shape[1]
    if before_chunk is not None and n:
        before_chunk(cache)
    outs = []
    for part in stream_chunks(model, cache, ids, chunk, protected=protected, logits_to_keep=0, hidden=hidden):
        outs.append(part.logits)
        if before_chunk is not None and part.end < n:  # the generator resumes here before the next chunk
            before_chunk(cache)
    return torch.cat(outs)[None]


def decode_steps(model: torch.nn.Module, cache, ids: torch.Tensor, fast=None) -> torch.Tensor:
    """One-token decode steps over ``ids`` ``[1, n]`` through ``cache``; logits ``[n, vocab]`` (fp32).

    With ``fast`` (a :class:`~sepllm_core.fast_decode.FastDecode`) each step goes through
    ``fast.forward``, as a Session decodes; without, through the model's own forward.
    """
    return torch.cat([forward_chunk(model, cache, [token], fast=fast) for token in ids[0].tolist()])


class KeptRecorder:
    """``before_chunk`` callback: records the absolute positions the cache keeps before each chunk."""

    def __init__(self):
        self.kept: list[torch.Tensor] = []

    def __call__(self, cache) -> None:
        self.kept.append(cache.kept_positions().clone())


def masked_reference(model: torch.nn.Module, ids: torch.Tensor, chunk: int, kept_before: list[torch.Tensor],
                     hidden: bool = False) -> torch.Tensor:
    """One forward over all of ``ids`` where chunk ``k`` sees ``kept_before[k]`` plus itself causally.

    With absolute positions this is exactly what an evicting cache computes in ``original`` mode.
    Returns logits ``[1, n, vocab]`` (or final hidden states with ``hidden=True``), fp32.
    """
    n = ids.shape[1]
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for k, start in enumerate(range(0, n, chunk)):
        end = min(start + chunk, n)
        allowed[start:end, kept_before[k]] = True
        allowed[start:end, start:end] = torch.ones(end - start, end - start, dtype=torch.bool).tril()
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(n, n, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]
    with torch.inference_mode():
        forward = model.model if hidden else model
        out = forward(input_ids=ids, attention_mask=mask, position_ids=torch.arange(n)[None], use_cache=False)
    return (out.last_hidden_state if hidden else out.logits).float()
