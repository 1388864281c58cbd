"""Fixtures of the pipeline tests: the default model loaded as the app loads it, a short real document."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "resources" / "sample.md"


@pytest.fixture(scope="session")
def loaded(default_model_dir):
    """The default model through ``app.engine.models.load_model`` with ``pack=True``, as the CLI and the GUI
    load it: packed linears and, its weights being 4-bit already, the int4 decode copy."""
    from app.engine.models import load_model

    model = load_model(str(default_model_dir), device="cpu", pack=True)
    if model.decode_weights != "int4" or not model.packed_layers:
        raise RuntimeError(f"the default model loaded with decode weights {model.decode_weights} and "
                           f"{model.packed_layers} packed layers: not the app's int4 path")
    return model


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
