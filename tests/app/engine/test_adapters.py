"""SepLLM adapters in the engine: a registered adapter loads merged into its base, with the cache it wants."""

from __future__ import annotations

import shutil
import threading

import pytest
import torch

from app.engine import adapters, registry
from app.engine.models import load_model
from app.errors import ModelError

PROMPT = "The keeper of the north gate said the password was"


@pytest.fixture(scope="module")
def saved_adapter(default_model_dir, tmp_path_factory):
    """A rank-4 LoRA on the real default model with non-zero weights, saved as 'sepsum adapt' saves it."""
    from transformers import AutoModelForCausalLM

    from sepllm_core.adapt import AdaptConfig, attach_lora, save_adapter

    out = tmp_path_factory.mktemp("adapter") / "tiny-sepllm"
    out.mkdir()
    config = AdaptConfig(lora_r=4, lora_alpha=8, separators="sentence", save_dtype="")
    model = attach_lora(AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.float32), config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))
    save_adapter(model, out, config, base_model="smollm2-135m-instruct", history=[], separators=97)
    return out


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        return model(input_ids=ids).logits[0, -1].float()


def test_a_registered_adapter_loads_merged_with_its_separators_and_positions(installed_home, saved_adapter,
                                                                             default_model):
    from sepllm_core.adapt import separator_lookup

    registry.add(registry.ModelEntry(name="tiny-sepllm", path=str(saved_adapter), source="adapter",
                                     format="adapter", notes={"base": "smollm2-135m-instruct"}))
    loaded = load_model("tiny-sepllm", device="cpu", dtype="bf16")
    assert loaded.variant == "SepLLM-adapted (tiny-sepllm)" and loaded.name == "tiny-sepllm"
    assert loaded.separators == "sentence" and loaded.positions == "shifted"
    assert torch.equal(loaded.separator_table, separator_lookup(loaded.tokenizer, "sentence"))
    base_model, tokenizer = default_model
    adapted, base = _logits(loaded.model, tokenizer), _logits(base_model, tokenizer)
    assert (adapted - base).abs().max() > 0.05  # the adapter is applied ...
    plain = load_model(None, device="cpu", dtype="bf16")  # ... and only where asked for
    assert plain.variant == "base" and plain.positions == "" and plain.separator_table is None
    assert torch.allclose(_logits(plain.model, tokenizer), base, atol=1e-3)


def test_an_adapter_folder_given_as_a_path_finds_its_base(installed_home, saved_adapter):
    entry = registry.resolve(str(saved_adapter))
    assert entry.source == "adapter" and entry.notes["base"] == "smollm2-135m-instruct"
    assert registry.base_of(entry).source == "default"
    from app.engine.estimate import model_info_for

    name, info = model_info_for(str(saved_adapter))  # the memory estimate reads the base's weights
    assert name == "tiny-sepllm" and info.layers == 30


def test_broken_adapters_are_refused_with_the_folder_named(installed_home, saved_adapter, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(saved_adapter, pickled)
    (pickled / adapters.ADAPTER_WEIGHTS).rename(pickled / adapters.PICKLED_WEIGHTS)
    with pytest.raises(ModelError, match="pickled adapter_model.bin"):
        load_model(str(pickled), device="cpu")
    orphan = tmp_path / "orphan"
    shutil.copytree(saved_adapter, orphan)
    meta = (orphan / adapters.META).read_text().replace('"smollm2-135m-instruct"', '"no-such-model"')
    (orphan / adapters.META).write_text(meta)
    with pytest.raises(ModelError, match="needs its base model 'no-such-model'"):
        load_model(str(orphan), device="cpu")


def test_the_pipeline_reads_with_the_adapted_cache_and_names_the_variant(installed_home, saved_adapter, tmp_path,
                                                                        monkeypatch):
    from app.summarize import pipeline
    from app.summarize.events import SummaryDone, SummaryRequest
    from sepllm_core import generate

    tables = []

    class Recording(generate.Session):
        def __init__(self, *args, separators=None, **kwargs):
            tables.append(separators)
            super().__init__(*args, separators=separators, **kwargs)

    monkeypatch.setattr(generate, "Session", Recording)

    registry.add(registry.ModelEntry(name="tiny-sepllm", path=str(saved_adapter), source="adapter",
                                     format="adapter", notes={"base": "smollm2-135m-instruct"}))
    document = tmp_path / "notes.txt"
    document.write_text("The pump at the mill failed on Monday. It was fixed on Tuesday by the night crew. " * 40)
    request = SummaryRequest(paths=[document], mode="single", length="short", max_new_tokens=8,
                             model="tiny-sepllm", cache_budget={"separators": 64, "local": 64, "max_entries": 256})
    (done,) = [e for e in pipeline.summarize(request, threading.Event()) if isinstance(e, SummaryDone)]
    assert done.stats["model_variant"] == "SepLLM-adapted (tiny-sepllm)"
    assert done.stats["cache"]["positions"] == "shifted"  # the adapter's, since the request left it on auto
    assert tables and all(t is not None and int(t.sum()) < 200 for t in tables)  # sentence enders, not the default


def test_the_meta_file_name_matches_the_trainer():
    from sepllm_core.adapt import ADAPT_META

    assert adapters.META == ADAPT_META


def test_the_shipped_adapter_is_registered_with_the_default_and_can_be_the_default(
        isolated_home, default_model_dir, saved_adapter, tmp_path, monkeypatch):
    from app.engine import default_model

    shipped = tmp_path / "adapters"
    shutil.copytree(saved_adapter, shipped / default_model.ADAPTER_NAME)
    monkeypatch.setattr(default_model, "SHIPPED_ADAPTERS", shipped)
    registry.register_default(default_model_dir)
    entry = registry.load()[default_model.ADAPTER_NAME]
    assert entry.source == "adapter" and entry.notes["base"] == default_model.DEFAULT_MODEL_NAME
    assert registry.base_of(entry).path == str(default_model_dir)
    monkeypatch.setattr(default_model, "ADAPTED_BY_DEFAULT", False)
    assert registry.resolve(None).name == default_model.DEFAULT_MODEL_NAME
    monkeypatch.setattr(default_model, "ADAPTED_BY_DEFAULT", True)
    assert registry.resolve(None).name == default_model.ADAPTER_NAME
    assert registry.resolve(default_model.DEFAULT_MODEL_NAME).source == "default"  # the base stays selectable
    monkeypatch.setattr(default_model, "SHIPPED_ADAPTERS", tmp_path / "none")  # a build without the adapter
    assert registry.resolve(None).name == default_model.DEFAULT_MODEL_NAME
