"""RoPE re-rotation: rotating a key cached at p by d equals computing it at p + d (rope scaling included)."""

from __future__ import annotations

import pytest
import torch
from transformers import CohereConfig, Gemma3TextConfig, LlamaConfig, Phi3Config, Qwen2Config

from sepllm_core.positions import RotaryShifter, build_rotary_module, check_shiftable

SMALL = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=1, intermediate_size=64,
             num_hidden_layers=1, vocab_size=64)

ROPES = {
    "default": {"rope_type": "default", "rope_theta": 10000.0},
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    "llama3": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64},
}


def _apply(keys: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The models' own formula: k * cos + rotate_half(k) * sin on the first rotary_dim channels."""
    rot = cos.shape[-1]
    part, rest = keys[..., :rot], keys[..., rot:]
    rotated = torch.cat((-part[..., rot // 2:], part[..., : rot // 2]), dim=-1)
    return torch.cat((part * cos + rotated * sin, rest), dim=-1)


def _check_composition(config, layer_type=None):
    rotary = build_rotary_module(config)
    shifter = RotaryShifter(config, rotary)
    head_dim = config.head_dim
    keys = torch.randn(1, 1, 6, head_dim, dtype=torch.float64).float()
    start = torch.tensor([0, 3, 17, 40, 90, 200])
    delta = torch.tensor([5, -3, -17, 100, -60, -150])
    args = (layer_type,) if layer_type else ()
    dummy = torch.zeros(1)
    cos, sin = rotary(dummy, start[None], *args)
    cached = _apply(keys, cos[0], sin[0])
    cos2, sin2 = rotary(dummy, (start + delta)[None], *args)
    expected = _apply(keys, cos2[0], sin2[0])
    moved = cached.clone()
    RotaryShifter.rotate_(moved, *shifter.cos_sin(delta, layer_type, moved.device))
    torch.testing.assert_close(moved, expected, atol=2e-5, rtol=1e-5)
    assert not torch.allclose(cached, expected, atol=1e-3)


@pytest.mark.parametrize("rope", list(ROPES))
def test_rotation_composes_with_rope_scaling(rope):
    _check_composition(LlamaConfig(**SMALL, rope_parameters=dict(ROPES[rope]), max_position_embeddings=256))


def test_partial_rotary_phi3():
    config = Phi3Config(**SMALL, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                   "partial_rotary_factor": 0.5})
    config.head_dim = config.hidden_size // config.num_attention_heads
    cos, _ = build_rotary_module(config)(torch.zeros(1), torch.arange(3)[None])
    assert cos.shape[-1] == config.head_dim // 2
    _check_composition(config)


@pytest.mark.parametrize("layer_type", ["sliding_attention", "full_attention"])
def test_per_layer_type_rope_gemma3(layer_type):
    config = Gemma3TextConfig(**{**SMALL, "num_hidden_layers": 2}, head_dim=32, sliding_window=8,
                              layer_types=["sliding_attention", "full_attention"])
    _check_composition(config, layer_type)


def test_bf16_keys_rotated_in_fp32():
    """A real shift of bf16 keys equals the fp64 rotation rounded once to bf16 (rotating in bf16 does not)."""
    config = Qwen2Config(**SMALL)
    shifter = RotaryShifter(config)
    generator = torch.Generator().manual_seed(0)
    keys = (torch.randn(1, 1, 256, 32, generator=generator) * 4).to(torch.bfloat16)
    delta = torch.randint(-4000, 4000, (256,), generator=generator)
    cos, sin = shifter.cos_sin(delta, None, keys.device)
    reference = _apply(keys.double(), cos.double(), sin.double()).to(torch.bfloat16)
    moved = keys.clone()
    RotaryShifter.rotate_(moved, cos, sin)
    assert not torch.equal(moved, keys)
    ulp = (reference.float().abs() * 2.0**-7).clamp_min(2.0**-126)  # one bf16 step at each value
    assert ((moved.float() - reference.float()).abs() <= ulp).all()  # at most a tie rounded the other way
    assert (moved == reference).float().mean() > 0.99
    in_bf16 = _apply(keys, cos.to(torch.bfloat16), sin.to(torch.bfloat16))  # what fp32 arithmetic avoids
    assert (in_bf16 == reference).float().mean() < (moved == reference).float().mean() - 0.1
    again = keys.clone()
    RotaryShifter.rotate_(again, *shifter.cos_sin(torch.zeros(256, dtype=torch.long), None, keys.device))
    assert torch.equal(again, keys)  # delta 0 is exactly the identity


def test_refusals():
    with pytest.raises(ValueError, match="cohere"):
        check_shiftable(CohereConfig(**SMALL))
    for rope_type in ("dynamic", "longrope"):
        params = {"rope_type": rope_type, "rope_theta": 10000.0, "factor": 2.0}
        if rope_type == "longrope":
            params.update(short_factor=[1.0] * 16, long_factor=[2.0] * 16, original_max_position_embeddings=64)
        with pytest.raises(ValueError, match=rope_type):
            check_shiftable(LlamaConfig(**SMALL, rope_parameters=params))
