"""Shared fixtures: the real default model, the shared test data, an isolated SEPSUM_HOME.

``make test`` installs the default model into ``$SEPSUM_HOME`` (``.cache/sepsum-home``)
before pytest starts; the ``default_model_dir`` fixture reads it from there. Every test
otherwise runs with ``SEPSUM_HOME`` pointing at a fresh temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import offline

offline.enforce()

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
_MODEL_HOME = Path(os.environ.get("SEPSUM_HOME", REPO / ".cache" / "sepsum-home")).resolve()
IN_CI = os.environ.get("CI", "").lower() == "true"


def _require(path: Path, what: str) -> Path:
    """Return ``path``; when it is missing fail under CI=true and skip (with the reason) locally."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if IN_CI:
        pytest.fail(message + " (CI=true: shared data and the default model are required)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real PDFs, chat exports, books and summary pairs (read in place)."""
    return _require(SHARED_DATA, "shared test data")


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The converted default model (bf16 safetensors + tokenizer), installed by ``make test``."""
    return _require(_MODEL_HOME / "models" / "smollm2-135m-instruct" / "model.safetensors",
                    "the default model (run 'make setup')").parent


@pytest.fixture(scope="session")
def default_model(default_model_dir):
    """(model, tokenizer) of the real default model in bf16 on CPU, loaded once per session."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.bfloat16)
    model.eval()
    return model, tokenizer


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """Each test gets its own empty SEPSUM_HOME so nothing touches the real home."""
    home = tmp_path_factory.mktemp("sepsum-home")
    monkeypatch.setenv("SEPSUM_HOME", str(home))
    return home


@pytest.fixture
def installed_home(isolated_home, default_model_dir) -> Path:
    """An isolated SEPSUM_HOME whose registry knows the default model (no copy, no download)."""
    from app.engine import registry

    registry.register_default(default_model_dir)
    return isolated_home


@pytest.fixture
def torch_threads():
    """``torch.set_num_threads`` for one test; the count before it is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def refuse_network(monkeypatch) -> list:
    """Make every socket connection and name lookup fail the test; returns the attempts (args) seen."""
    import socket

    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network connection attempted: {args}")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts
