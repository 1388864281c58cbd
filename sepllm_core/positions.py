"""RoPE re-rotation of cached keys by a position delta, with the model's own rotary embedding in fp32."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

ROTATE_HALF_MODEL_TYPES = frozenset({
    "llama", "mistral", "ministral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
    "gemma2", "gemma3_text", "phi3", "olmo", "olmo2", "granite", "granitemoe", "smollm3", "starcoder2",
    "helium", "stablelm", "gpt_neox", "phi",
})
"""Model types whose keys are rotated with ``rotate_half`` over the first ``rotary_dim`` channels."""

UNSHIFTABLE_ROPE_TYPES = frozenset({"dynamic", "longrope"})
"""Rope types whose frequencies change with the sequence length, so rotations do not compose."""


def rope_parameters(model_config: Any, layer_type: str | None = None) -> dict[str, Any] | None:
    """The model's rope parameters (``rope_type``, ``rope_theta`` ...), per layer type where it has them."""
    params = getattr(model_config, "rope_parameters", None)
    if not params:
        return None
    if layer_type is not None and isinstance(params.get(layer_type), dict):
        return dict(params[layer_type])
    if "rope_type" not in params and "rope_theta" not in params:
        first = next((v for v in params.values() if isinstance(v, dict)), None)
        return dict(first) if first else None
    return dict(params)


def has_rotary_positions(model_config: Any) -> bool:
    """Whether the model encodes positions with RoPE (needed for any eviction)."""
    return rope_parameters(model_config) is not None


def check_shiftable(model_config: Any) -> None:
    """Raise ``ValueError`` unless cached keys of this model can be re-rotated exactly.

    Parameters
    ----------
    model_config : transformers.PretrainedConfig
        The decoder's config.
    """
    model_type = getattr(model_config, "model_type", "?")
    if not has_rotary_positions(model_config):
        raise ValueError(f"model type {model_type!r} has no rotary positions: use positions='original'")
    if model_type not in ROTATE_HALF_MODEL_TYPES:
        raise ValueError(
            f"positions='shifted' is not supported for model type {model_type!r} (its rotary variant "
            "is not verified here): use positions='original'"
        )
    params = getattr(model_config, "rope_parameters", {}) or {}
    variants = [params] + [v for v in params.values() if isinstance(v, dict)]
    for p in variants:
        if p.get("rope_type") in UNSHIFTABLE_ROPE_TYPES:
            raise ValueError(
                f"positions='shifted' is not supported with rope_type {p['rope_type']!r} of model type "
                f"{model_type!r} (its frequencies depend on the length): use positions='original'"
            )
        if p.get("mrope_section"):
            raise ValueError(f"multimodal rope of model type {model_type!r} is not supported: use positions='original'")


def find_rotary_module(model: Any) -> torch.nn.Module | None:
    """The rotary embedding module of a loaded causal LM (``model.model.rotary_emb``), if any."""
    for candidate in (getattr(model, "model", None), model):
        module = getattr(candidate, "rotary_emb", None)
        if isinstance(module, torch.nn.Module):
            return module
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    module = getattr(decoder, "rotary_emb", None)
    return module if isinstance(module, torch.nn.Module) else None


def build_rotary_module(model_config: Any) -> torch.nn.Module:
    """Instantiate the model's own rotary embedding class from its config (no weights needed)."""
    from transformers import AutoModelForCausalLM

    mapping = AutoModelForCausalLM._model_mapping
    try:
        found: Any = mapping[type(model_config)]
    except KeyError as exc:
        raise ValueError(f"model type {model_config.model_type!r} is not a known causal LM") from exc
    model_class = next(c for c in found if c is not None) if isinstance(found, tuple) else found
    module = sys.modules[model_class.__module__]
    classes = [obj for name, obj in vars(module).items()
               if name.endswith("RotaryEmbedding") and isinstance(obj, type)]
    if not classes:
        raise ValueError(f"model type {model_config.model_type!r} has no rotary embedding class")
    prefix = model_class.__name__.split("For")[0]
    classes.sort(key=lambda cls: (not cls.__name__.startswith(prefix), len(cls.__name__)))
    return classes[0](config=model_config)


class RotaryShifter:
    """Re-rotates cached (post-RoPE) keys by a per-entry position delta.

    Rotations compose: ``R(p + d) k = R(d) R(p) k``, so a key cached at position ``p`` moves to
    ``p + d`` by one more rotation with the same frequencies. The cos/sin come from the model's own
    rotary module (rope scaling included) and are divided by its attention scaling, which the
    cached key already carries.

    Parameters
    ----------
    model_config : transformers.PretrainedConfig
        The decoder's config; checked with :func:`check_shiftable`.
    rotary : torch.nn.Module, optional
        The model's rotary embedding module; built from the config when omitted.
    """

    def __init__(self, model_config: Any, rotary: torch.nn.Module | None = None):
        check_shiftable(model_config)
        self.rotary = rotary if rotary is not None else build_rotary_module(model_config)
        self._takes_layer_type = "layer_type" in inspect.signature(self.rotary.forward).parameters

    def cos_sin(self, delta: torch.Tensor, layer_type: str | None, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of ``delta`` in fp32.

        Parameters
        ----------
        delta : torch.LongTensor, shape ``[m]``
        layer_type : str or None
            "full_attention" / "sliding_attention" for models with per-layer-type rope.

        Returns
        -------
        (torch.FloatTensor, torch.FloatTensor), each shape ``[m, rotary_dim]``
        """
        buffers = list(self.rotary.buffers())
        rotary_device = buffers[0].device if buffers else device
        pos = torch.cat([torch.zeros(1, dtype=torch.long), delta.to("cpu", torch.long)])
        pos = pos.to(rotary_device)[None]  # [1, m + 1]; entry 0 reads the attention scaling
        dummy = torch.zeros(1, dtype=torch.float32, device=rotary_device)
        if self._takes_layer_type:
            cos, sin = self.rotary(dummy, pos, layer_type or "full_attention")
        else:
            cos, sin = self.rotary(dummy, pos)
        cos, sin = cos[0].float(), sin[0].float()
        scale = cos[0, 0]
        return (cos[1:] / scale).to(device), (sin[1:] / scale).to(device)

    @staticmethod
    def rotate_(keys: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Rotate ``keys`` in place (fp32 arithmetic, stored back in the keys' dtype).

        Parameters
        ----------
        keys : torch.Tensor, shape ``[batch, kv_heads, m, head_dim]``
        cos, sin : torch.FloatTensor, shape ``[m, rotary_dim]``, ``rotary_dim <= head_dim``
        """
        rot = cos.shape[-1]
        part = keys[..., :rot].float()
        half = rot // 2
        rotated = torch.cat((-part[..., half:], part[..., :half]), dim=-1)
        keys[..., :rot] = (part * cos + rotated * sin).to(keys.dtype)
