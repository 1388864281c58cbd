"""Settings -> request -> CacheConfig: the one translation the CLI, the GUI and the evaluations use."""

import argparse

import pytest

from app import request, settings
from app.summarize.events import SummaryRequest


def _values(*flags: str) -> dict:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return settings.from_args(parser.parse_args(list(flags)), base=settings.defaults())


def test_every_request_setting_is_a_summary_request_field():
    fields = set(SummaryRequest.__dataclass_fields__)
    assert set(request.REQUEST_SETTINGS) <= fields
    # every setting reaches the request: as a field, or as a cache budget
    assert {s.name for s in settings.SCHEMA} == set(request.REQUEST_SETTINGS) | set(settings.CACHE_BUDGET_KEYS)


def test_flags_become_a_request_and_overrides_win():
    values = _values("--length", "short", "--cache-max-entries", "600", "--chunk-size", "64", "--kv-quant", "int8")
    made = request.from_settings(["a.md"], values, password="pw", max_new_tokens=7)
    assert made.paths == ["a.md"] and made.length == "short" and made.kv_quant == "int8"
    assert made.cache_budget == {"max_entries": 600, "chunk": 64}
    assert (made.password, made.max_new_tokens) == ("pw", 7)


def test_cache_settings_become_a_cache_config():
    config = request.cache_config(request.from_settings([], _values("--cache", "window", "--cache-max-entries",
                                                                    "600", "--chunk-size", "64")))
    assert config.policy == "window" and config.max_entries == 600 and config.chunk_size == 64
    sepllm = request.cache_config(request.from_settings([], _values("--cache-separators", "32", "--cache-local",
                                                                    "128", "--kv-quant", "int8")))
    assert (sepllm.policy, sepllm.separators, sepllm.local, sepllm.kv_quant) == ("sepllm", 32, 128, "int8")
    assert request.cache_config(request.from_settings([], _values())).kv_quant == "none"  # the default: bf16
    assert request.cache_config(SummaryRequest(paths=[], cache="full")).bounded is False


def test_budgets_that_do_not_fit_together_are_a_settings_error():
    with pytest.raises(settings.SettingsError, match="cache settings rejected"):
        request.cache_config(SummaryRequest(paths=[], cache_budget={"max_entries": 100, "local": 256}))


def test_the_estimate_counts_the_cache_the_run_builds(installed_home):
    bf16 = request.estimate_for_request(request.from_settings([], _values("--device", "cpu")))
    int8 = request.estimate_for_request(request.from_settings([], _values("--device", "cpu", "--kv-quant", "int8")))
    assert int8.kv_entries == bf16.kv_entries == bf16.tokens  # the 2048 budget, before a document is read
    assert int8.kv_bytes == bf16.kv_bytes_int8 < bf16.kv_bytes
    assert int8.kv_bytes_int8 == 0  # already int8: nothing left to advise
