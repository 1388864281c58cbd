"""Fixtures of the pipeline tests: the default model as a LoadedModel, a short real document."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "resources" / "sample.md"


@pytest.fixture(scope="session")
def loaded(default_model, default_model_dir):
    """The session's default model wrapped as the engine's LoadedModel (no second load)."""
    from app.engine.models import LoadedModel

    model, tokenizer = default_model
    return LoadedModel(model=model, tokenizer=tokenizer, device="cpu", dtype="bf16", quant="none",
                       name="smollm2-135m-instruct", path=default_model_dir, weights_bytes=0, load_seconds=0.0)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture
def short_report(tmp_path) -> Path:
    """The first sections of the sample report (about 700 tokens): quick to read."""
    text = SAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "short_report.md"
    path.write_text(text[: text.index("## 3. What happened")], encoding="utf-8")
    return path
