"""Which languages a model writes, and the summary language chosen from them and the document's."""

from __future__ import annotations

from app.engine.languages import (
    ModelLanguages,
    choose_summary_language,
    language_code,
    languages_of_loaded,
    model_languages,
)

ENGLISH_ONLY = ModelLanguages(("en",), True)


def test_the_default_model_writes_english_and_metadata_can_say_more():
    assert model_languages("smollm2-135m-instruct") == ENGLISH_ONLY
    assert model_languages("my-adapter", {"base": "smollm2-135m-instruct"}) == ENGLISH_ONLY
    assert model_languages("qwen", {"languages": ["en", "fr", "CS"]}) == ModelLanguages(("en", "fr", "cs"), True)
    assert model_languages("unknown-model") == ModelLanguages(("en",), False)


def test_registry_notes_declare_a_models_languages(installed_home):
    from types import SimpleNamespace

    from app.engine import registry

    registry.add(registry.ModelEntry(name="multi", path="/x", source="folder", notes={"languages": ["en", "cs"]}))
    assert languages_of_loaded(SimpleNamespace(name="multi")).codes == ("en", "cs")
    assert languages_of_loaded(SimpleNamespace(name="smollm2-135m-instruct")) == ENGLISH_ONLY


def test_default_rule_is_the_documents_language_where_the_model_writes_it():
    chosen = choose_summary_language(None, "cs", ENGLISH_ONLY, "The default model")
    assert chosen.code == "en"
    assert chosen.notice == "The default model writes English; import a multilingual model for Czech summaries."
    assert choose_summary_language(None, "en", ENGLISH_ONLY) == choose_summary_language(None, "und", ENGLISH_ONLY)
    assert choose_summary_language(None, "en", ENGLISH_ONLY).notice == ""
    multilingual = ModelLanguages(("en", "fr", "cs"), True)
    assert choose_summary_language(None, "cs", multilingual).code == "cs"
    assert choose_summary_language(None, "cs", multilingual).notice == ""


def test_a_requested_language_is_used_only_where_the_model_writes_it():
    multilingual = ModelLanguages(("en", "fr"), True)
    assert choose_summary_language("French", "en", multilingual).code == "fr"
    assert "the document is in English" in choose_summary_language("fr", "en", multilingual).notice
    refused = choose_summary_language("German", "de", ENGLISH_ONLY, "The default model")
    assert refused.code == "en" and "German summaries" in refused.notice
    unknown = choose_summary_language(None, "fr", ModelLanguages(("en",), False), "The model x")
    assert unknown.code == "en" and "declares no languages" in unknown.notice


def test_language_codes_from_names_and_codes():
    assert language_code("French") == "fr" and language_code("fr") == "fr" and language_code("Czech") == "cs"
    assert language_code(None) is None and language_code("") is None


def test_import_declares_the_languages_a_model_writes(installed_home, default_model_dir, capsys):
    from types import SimpleNamespace

    from app.cli import main

    assert main(["models", "import", str(default_model_dir), "--name", "multi", "--languages", "en,French,cs"]) == 0
    assert "multi: writes en, fr, cs" in capsys.readouterr().out
    assert languages_of_loaded(SimpleNamespace(name="multi")) == ModelLanguages(("en", "fr", "cs"), True)
