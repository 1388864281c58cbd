"""The curated model catalog: schema, architectures the cache tests cover, config numbers, languages."""

from __future__ import annotations

import tomllib

import pytest

from app.engine import catalog
from app.engine.model_info import read_model_info
from app.errors import ModelError
from tests.sepllm_core.tiny_models import ARCHITECTURES


@pytest.fixture(scope="module")
def entries():
    return catalog.load()


def test_catalog_loads_every_entry_valid(entries):
    assert len(entries) >= 11
    expected = {"smollm2-135m-instruct", "smollm2-360m-instruct", "smollm2-1.7b-instruct", "qwen2.5-0.5b-instruct",
                "qwen2.5-1.5b-instruct", "qwen2.5-3b-instruct", "qwen2.5-7b-instruct", "llama-3.2-1b-instruct",
                "llama-3.2-3b-instruct", "mistral-7b-instruct-v0.3", "qwen3-0.6b", "qwen3-1.7b"}
    assert expected <= set(entries)
    for entry in entries.values():
        assert entry.repo.count("/") == 1 and entry.licence and entry.licence_url.startswith("https://")
        assert entry.trained_context >= 8192 and entry.languages and entry.separators == "default"


def test_every_architecture_is_one_the_cache_tests_cover(entries):
    covered = set(ARCHITECTURES)
    for entry in entries.values():
        assert entry.architecture in covered, f"{entry.name}: {entry.architecture} has no tiny-model cache test"
        assert catalog.ARCHITECTURE_CLASSES[entry.architecture] == ARCHITECTURES[entry.architecture][1]


def test_revisions_are_hashes_when_verified_and_branches_otherwise(entries):
    for entry in entries.values():
        if entry.verified:
            assert len(entry.revision) == 40 and set(entry.revision) <= set("0123456789abcdef")
        else:
            assert entry.revision and len(entry.revision) != 40


def test_thinking_models_are_the_qwen3_ones(entries):
    assert {e.name for e in entries.values() if e.thinking} == {"qwen3-0.6b", "qwen3-1.7b"}


def test_gated_models_are_the_llama_and_mistral_ones(entries):
    gated = {e.name for e in entries.values() if e.gated}
    assert gated == {"llama-3.2-1b-instruct", "llama-3.2-3b-instruct", "mistral-7b-instruct-v0.3"}
    for name in gated:
        assert "hf auth login" in entries[name].notes


def test_config_numbers_reproduce_the_real_default_model(entries, default_model_dir):
    """The catalog's numbers for SmolLM2-135M give exactly the tensor groups read from the installed files."""
    real = read_model_info(default_model_dir)
    entry = entries["smollm2-135m-instruct"]
    assert catalog.tensor_groups(entry) == real.groups
    info = catalog.model_info(entry)
    for key in ("layers", "heads", "kv_heads", "head_dim", "hidden_size", "intermediate_size", "vocab_size"):
        assert getattr(info, key) == getattr(real, key), key
    assert info.max_context == real.max_context
    header = entry.files["model.safetensors"].size - catalog.tensor_groups(entry).file_bytes
    assert 0 < header < 100_000  # the pinned file size is the tensors plus a safetensors JSON header


def test_parameters_are_checked_against_the_config_numbers():
    text = catalog.CATALOG_FILE.read_text(encoding="utf-8").replace("parameters = 494_032_768",
                                                                    "parameters = 494_032_769")
    with pytest.raises(ModelError, match=r"qwen2.5-0.5b-instruct.*494,032,768 parameters"):
        catalog.parse(text)


@pytest.mark.parametrize(("old", "new", "message"), [
    ('architecture = "mistral"', 'architecture = "falcon"', "architecture 'falcon' is not one of"),
    ('revision = "c170c708c41dac9275d15a8fff4eca08d52bab71"', 'revision = "main"', "must be a 40-hex commit"),
    ('languages = ["en"]\nchat_template = true\nthinking = false\nseparators = "default"\nlayers = 32\n'
     'hidden_size = 4096',
     'languages = ["english"]\nchat_template = true\nthinking = false\nseparators = "default"\nlayers = 32\n'
     'hidden_size = 4096', "ISO 639-1"),
    ("gated = true\narchitecture = \"mistral\"", "gated = \"yes\"\narchitecture = \"mistral\"", "gated must be true"),
    ('name = "qwen3-0.6b"', 'name = "qwen3-1.7b"', "name used twice"),
    ("schema = 1", "schema = 2", "schema = 1"),
])
def test_schema_violations_are_one_line_errors(old, new, message):
    text = catalog.CATALOG_FILE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ModelError, match=message) as caught:
        catalog.parse(text.replace(old, new, 1))
    assert "\n" not in str(caught.value)


def test_unverified_branch_revision_is_accepted():
    text = catalog.CATALOG_FILE.read_text(encoding="utf-8")
    pinned = 'revision = "c170c708c41dac9275d15a8fff4eca08d52bab71"\nverified = true'
    assert catalog.parse(text.replace(pinned, 'revision = "main"\nverified = false'))[
        "mistral-7b-instruct-v0.3"].revision == "main"


def test_the_file_is_plain_toml_with_one_table_per_model():
    raw = tomllib.loads(catalog.CATALOG_FILE.read_text(encoding="utf-8"))
    assert raw["schema"] == 1 and len(raw["models"]) == len(catalog.load())


def test_languages_for_names_repos_and_the_default(installed_home):
    assert catalog.languages_for("qwen2.5-1.5b-instruct")[:2] == ("en", "zh")
    assert catalog.languages_for("Qwen/Qwen2.5-1.5B-Instruct") == catalog.languages_for("qwen2.5-1.5b-instruct")
    assert catalog.languages_for("meta-llama/llama-3.2-3b-instruct") == ("en", "de", "fr", "it", "pt", "hi", "es",
                                                                         "th")
    assert catalog.languages_for(None) == ("en",)  # the default model (registered by installed_home)
    assert catalog.languages_for("smollm2-135m-instruct-sepllm") == ("en",)  # the shipped adapter: its base
    assert catalog.languages_for("/some/imported/folder") is None


def test_languages_for_a_downloaded_model_follows_its_registry_notes(isolated_home, tmp_path):
    from app.engine import registry
    from app.engine.registry import ModelEntry

    registry.add(ModelEntry(name="my-qwen", path=str(tmp_path), source="download",
                            notes={"repo": "Qwen/Qwen2.5-0.5B-Instruct"}))
    assert catalog.languages_for("my-qwen") == catalog.get("qwen2.5-0.5b-instruct").languages


def test_get_names_the_choices_when_unknown():
    with pytest.raises(ModelError, match=r"not in the model catalog \(choose one of: smollm2-135m-instruct, "):
        catalog.get("gpt-5")
