"""The settings schema: defaults, validation, the saved file, CLI flags and the request."""

import argparse
import json

import pytest

from app import paths, request, settings
from app.summarize.events import SummaryRequest


def test_every_setting_is_a_summary_request_field_or_a_cache_budget():
    fields = set(SummaryRequest.__dataclass_fields__)
    for setting in settings.SCHEMA:
        assert setting.name in fields or setting.name in settings.CACHE_BUDGET_KEYS, setting.name
        assert setting.help and setting.group in {"model", "summary", "cache"}
        if setting.choices:
            assert setting.default in setting.choices


def test_validate_converts_and_rejects():
    assert settings.validate("cache_max_entries", "512") == 512
    assert settings.validate("language", None) is None
    with pytest.raises(settings.SettingsError, match="must be one of"):
        settings.validate("length", "huge")
    with pytest.raises(settings.SettingsError, match="at least 16"):
        settings.validate("cache_max_entries", 3)
    with pytest.raises(settings.SettingsError, match="must be int"):
        settings.validate("notes_every", "often")
    with pytest.raises(settings.SettingsError, match="unknown setting"):
        settings.validate("colour", "blue")


def test_saved_values_round_trip_and_only_changes_are_written(isolated_home):
    values = settings.defaults() | {"length": "long", "cache_max_entries": 1024}
    file = settings.save(values)
    assert file == paths.settings_file()
    assert json.loads(file.read_text()) == {"cache_max_entries": 1024, "length": "long"}
    loaded = settings.load()
    assert loaded["length"] == "long" and loaded["cache_max_entries"] == 1024 and loaded["mode"] == "auto"


def test_a_broken_settings_file_is_a_one_line_error(isolated_home):
    paths.settings_file().write_text("{not json")
    with pytest.raises(settings.SettingsError, match="unreadable"):
        settings.load()
    paths.settings_file().write_text(json.dumps({"length": "endless"}))
    with pytest.raises(settings.SettingsError, match="length"):
        settings.load()


def test_flags_override_the_saved_file(isolated_home):
    settings.save(settings.defaults() | {"length": "long", "style": "paragraphs"})
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    args = parser.parse_args(["--length", "short", "--cache-max-entries", "600", "--cache", "window"])
    values = settings.from_args(args)
    assert values["length"] == "short" and values["style"] == "paragraphs" and values["cache"] == "window"
    made = request.from_settings([], values)
    assert made.cache_budget == {"max_entries": 600} and made.length == "short"
    with pytest.raises(SystemExit):
        parser.parse_args(["--quant", "2bit"])
