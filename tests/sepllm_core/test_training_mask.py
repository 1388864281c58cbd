"""The SepLLM training mask against a brute-force reference, and inside real attention kernels."""

from __future__ import annotations

import pytest
import torch

from sepllm_core.training_mask import budget_mask, sepllm_mask, to_attention_mask

VOCAB = 50
SEPARATOR_IDS = (3, 7, 11)


def _table() -> torch.Tensor:
    table = torch.zeros(VOCAB, dtype=torch.bool)
    table[list(SEPARATOR_IDS)] = True
    return table


def _reference(ids: list[int], initial: int, local: int, separators: int | None,
               max_entries: int | None = None) -> torch.Tensor:
    """Brute force: for each query, list the visible keys one by one."""
    seq = len(ids)
    mask = torch.zeros(seq, seq, dtype=torch.bool)
    for i in range(seq):
        outside = [j for j in range(initial, i + 1) if ids[j] in SEPARATOR_IDS and i - j >= local]
        kept = outside if separators is None else outside[max(len(outside) - separators, 0) :] if separators else []
        window = local if max_entries is None else max_entries - initial - len(kept)
        for j in range(i + 1):
            mask[i, j] = j < initial or i - j < max(local, window) or j in kept
    return mask


@pytest.mark.parametrize("initial,local", [(0, 1), (1, 3), (4, 5), (2, 40)])
@pytest.mark.parametrize("seed", [0, 1])
def test_sepllm_mask_matches_brute_force(initial, local, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 37), generator=generator)
    ids[:, 5] = SEPARATOR_IDS[0]  # at least one separator per row
    mask = sepllm_mask(ids, _table(), initial=initial, local=local)
    assert mask.shape == (3, 1, 37, 37) and mask.dtype == torch.bool
    for row in range(3):
        assert torch.equal(mask[row, 0], _reference(ids[row].tolist(), initial, local, None))


@pytest.mark.parametrize("separators", [0, 1, 3, 100])
@pytest.mark.parametrize("initial,local", [(0, 1), (4, 6)])
def test_budget_mask_matches_brute_force(separators, initial, local):
    ids = torch.randint(0, VOCAB, (2, 41), generator=torch.Generator().manual_seed(separators))
    ids[:, ::4] = SEPARATOR_IDS[1]
    mask = budget_mask(ids, _table(), initial=initial, local=local, separators=separators)
    for row in range(2):
        assert torch.equal(mask[row, 0], _reference(ids[row].tolist(), initial, local, separators))
    # No query ever sees more than the budget.
    assert int(mask.sum(-1).max()) <= initial + separators + local


@pytest.mark.parametrize("separators", [0, 2, 5])
def test_budget_mask_fills_the_budget_with_newest_tokens(separators):
    ids = torch.randint(0, VOCAB, (2, 60), generator=torch.Generator().manual_seed(7))
    ids[:, 3::9] = SEPARATOR_IDS[2]
    mask = budget_mask(ids, _table(), initial=2, local=6, separators=separators, max_entries=16)
    for row in range(2):
        assert torch.equal(mask[row, 0], _reference(ids[row].tolist(), 2, 6, separators, 16))
    assert int(mask.sum(-1).max()) <= 16
    # The last query uses the budget, less kept separators that the widened window also covers.
    assert int(mask[:, 0, -1].sum(-1).min()) >= 16 - separators


def test_budget_mask_with_all_separators_equals_training_mask():
    ids = torch.randint(0, VOCAB, (1, 64), generator=torch.Generator().manual_seed(3))
    full = sepllm_mask(ids, _table(), initial=2, local=8)
    assert torch.equal(budget_mask(ids, _table(), initial=2, local=8, separators=64), full)


def test_padding_hides_padded_keys_but_no_row_is_empty():
    ids = torch.randint(0, VOCAB, (1, 10))
    padding = torch.tensor([[1] * 7 + [0] * 3])
    mask = sepllm_mask(ids, _table(), initial=1, local=4, padding_mask=padding)[0, 0]
    assert not mask[9, 7:9].any() and mask[9, 9]
    assert bool(mask.any(-1).all())


def test_invalid_arguments_raise():
    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="local"):
        sepllm_mask(ids, _table(), local=0)
    with pytest.raises(ValueError, match="lookup table"):
        sepllm_mask(ids, _table().long())
    with pytest.raises(ValueError, match="batch, seq"):
        sepllm_mask(ids[0], _table())
    with pytest.raises(ValueError, match="sdpa"):
        to_attention_mask(sepllm_mask(ids, _table()), "flash_attention_2", torch.float32)


def test_additive_mask_is_zero_where_allowed():
    mask = sepllm_mask(torch.randint(0, VOCAB, (1, 12)), _table(), initial=1, local=3)
    additive = to_attention_mask(mask, "eager", torch.bfloat16)
    assert additive.dtype == torch.bfloat16
    assert torch.equal(additive == 0, mask)
    assert to_attention_mask(mask, "sdpa", torch.bfloat16) is mask


def _tiny(arch: str, attn: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    if arch == "gemma":
        kwargs["head_dim"] = 8
    config = AutoConfig.for_model(arch, **kwargs)
    config._attn_implementation = attn
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn).eval()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "mistral", "gemma"])
def test_masked_tokens_do_not_reach_the_output(arch):
    """Changing a token the mask hides leaves the last logits unchanged; under full attention it does not."""
    ids = torch.randint(12, VOCAB, (1, 32), generator=torch.Generator().manual_seed(0))
    ids[0, 10] = SEPARATOR_IDS[0]
    changed = ids.clone()
    changed[0, 15] = 20 if ids[0, 15] != 20 else 21  # not initial, not a separator, outside the window
    outputs = {}
    for attn in ("sdpa", "eager"):
        model = _tiny(arch, attn)
        mask = to_attention_mask(sepllm_mask(ids, _table(), initial=2, local=8), attn, torch.float32)
        with torch.no_grad():
            masked = [model(input_ids=x, attention_mask=mask).logits[0, -1] for x in (ids, changed)]
            full = [model(input_ids=x).logits[0, -1] for x in (ids, changed)]
        torch.testing.assert_close(masked[0], masked[1])
        assert not torch.allclose(full[0], full[1])
        outputs[attn] = masked[0]
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], rtol=1e-4, atol=1e-4)
