"""``sepsum models import | list | info``: GGUF conversion, safetensors folders, refusals with exit 4."""

from __future__ import annotations

import json
import shutil

import pytest

from app.cli import main
from app.engine import registry
from app.engine.importer import find_imported
from app.engine.models import load_model
from app.errors import ModelError
from tests.app.engine.conftest import next_token_logits, one_line_error


def test_gguf_import_converts_once_and_loads_the_same_model(
    smollm2_gguf, isolated_home, reference_logits, capsys
):
    assert main(["models", "import", str(smollm2_gguf), "--name", "smol-gguf"]) == 0
    assert "smol-gguf: imported (gguf)" in capsys.readouterr().out
    entry = registry.load()["smol-gguf"]
    folder = isolated_home / "models" / "smol-gguf"
    assert entry.path == str(folder) and (folder / "model.safetensors").is_file()
    mtime = (folder / "model.safetensors").stat().st_mtime_ns

    # Importing again, or loading by the GGUF's path, reuses the converted folder.
    assert main(["models", "import", str(smollm2_gguf)]) == 0
    assert "smol-gguf: already imported" in capsys.readouterr().out
    loaded = load_model(str(smollm2_gguf), device="cpu", dtype="bf16")
    assert loaded.name == "smol-gguf" and loaded.path == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert (next_token_logits(loaded) - reference_logits).abs().max() < 1e-3

    assert main(["models", "info", "smol-gguf"]) == 0
    info = capsys.readouterr().out
    for line in (
        "architecture:  LlamaForCausalLM",
        "layers:        30",
        "kv heads:      3",
        "head_dim:      64",
        "max context:   8,192 tokens",
        "dtype:         bfloat16",
        "chat template: yes",
    ):
        assert line in info
    assert main(["models", "list"]) == 0
    assert "smol-gguf" in capsys.readouterr().out


def test_info_reads_a_gguf_header_without_converting(smollm2_gguf, capsys):
    assert main(["models", "info", str(smollm2_gguf)]) == 0
    out = capsys.readouterr().out
    assert "llama (GGUF)" in out and "parameters:    134.5 M" in out and "size on disk:  98 MB" in out
    assert find_imported(smollm2_gguf) is None


def test_folder_import_registers_in_place(default_model_dir, capsys):
    assert main(["models", "import", str(default_model_dir), "--name", "Mine"]) == 0
    assert "mine: imported (folder)" in capsys.readouterr().out
    assert registry.load()["mine"].path == str(default_model_dir.resolve())
    assert main(["models", "import", str(default_model_dir)]) == 0
    assert "mine: already imported" in capsys.readouterr().out


def test_name_collision_is_refused_before_converting(default_model_dir, smollm2_gguf, isolated_home, capsys):
    assert main(["models", "import", str(default_model_dir), "--name", "mine"]) == 0
    assert main(["models", "import", str(smollm2_gguf), "--name", "mine"]) == 4
    assert "a model named 'mine' is already registered" in one_line_error(capsys)
    assert not (isolated_home / "models").exists()


@pytest.fixture
def bin_only_folder(default_model_dir, tmp_path):
    folder = tmp_path / "pickled-model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(default_model_dir / name, folder / name)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    return folder


def test_pickle_only_folder_is_refused_with_exit_4(bin_only_folder, capsys):
    assert main(["models", "import", str(bin_only_folder)]) == 4
    err = one_line_error(capsys)
    assert "pytorch_model.bin" in err and "safetensors only" in err
    assert registry.load() == {}
    with pytest.raises(ModelError, match="pytorch_model.bin"):
        load_model(str(bin_only_folder), device="cpu")


def test_custom_code_architecture_is_refused(default_model_dir, tmp_path, capsys):
    folder = tmp_path / "custom"
    shutil.copytree(default_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="my_custom_llm", auto_map={"AutoModelForCausalLM": "modeling_mine.MyLLM"})
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["models", "import", str(folder)]) == 4
    assert "never runs a model's own code (trust_remote_code)" in one_line_error(capsys)


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_corrupt_gguf_is_refused_with_exit_4(smollm2_gguf, tmp_path, isolated_home, damage, capsys):
    bad = tmp_path / "broken.gguf"
    if damage == "random bytes":
        bad.write_bytes(b"GGUF" + bytes(range(256)) * 40)
    else:
        with open(smollm2_gguf, "rb") as source:
            bad.write_bytes(source.read(3_000_000))
    assert main(["models", "import", str(bad)]) == 4
    err = one_line_error(capsys)
    assert "broken.gguf is not a readable GGUF file" in err and "re-download it" in err
    assert registry.load() == {} and not (isolated_home / "models" / "broken").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "info", "no-such-model"], "no model named 'no-such-model'"),
        (["models", "import", "/no/such/folder"], "/no/such/folder does not exist"),
    ],
)
def test_unknown_model_or_path_exits_4_with_one_line(argv, message, capsys):
    assert main(argv) == 4
    assert message in one_line_error(capsys)


def test_missing_default_model_says_how_to_install(capsys):
    with pytest.raises(ModelError, match="run 'sepsum models install-default'"):
        load_model(None, device="cpu")
    assert main(["models", "list"]) == 0
    assert "no models registered" in capsys.readouterr().err
