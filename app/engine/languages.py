"""Which languages a model writes, and the summary language chosen from that and the document's.

A model's languages are metadata: the registry entry's ``notes["languages"]`` (ISO 639-1 codes,
set by a catalog or at import), else what is known of the default model. A model nothing is known
about is assumed to write English, and says so (``known=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.summarize.prompts import LANGUAGE_NAMES

ENGLISH = "en"
# SmolLM2 was trained on English text only (its model card); the adapter keeps the base's languages.
KNOWN_MODELS = {"smollm2-135m-instruct": (ENGLISH,), "smollm2-135m-instruct-sepllm": (ENGLISH,)}
_CODES = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
EXTRA_NAMES = {"la": "Latin", "cs": "Czech", "bn": "Bengali", "ta": "Tamil", "ka": "Georgian",
               "hy": "Armenian", "da": "Danish", "fi": "Finnish", "no": "Norwegian", "nb": "Norwegian", "hu": "Hungarian",
               "ro": "Romanian", "vi": "Vietnamese", "id": "Indonesian", "fa": "Persian", "sk": "Slovak"}


@dataclass(frozen=True)
class ModelLanguages:
    """The languages a model writes; ``known`` is False when assumed (nothing said about the model)."""

    codes: tuple[str, ...]
    known: bool

    def writes(self, code: str) -> bool:
        return code in self.codes


def model_languages(name: str | None, notes: dict | None = None) -> ModelLanguages:
    """From the entry's notes (``languages``: a list of codes), else the known models, else English."""
    declared = (notes or {}).get("languages")
    if declared:
        return ModelLanguages(tuple(str(code).lower() for code in declared), True)
    key = (name or "").lower()
    if key in KNOWN_MODELS:
        return ModelLanguages(KNOWN_MODELS[key], True)
    base = (notes or {}).get("base")
    if base and str(base).lower() in KNOWN_MODELS:
        return ModelLanguages(KNOWN_MODELS[str(base).lower()], True)
    return ModelLanguages((ENGLISH,), False)


def declare_languages(name: str, codes: list[str]) -> tuple[str, ...]:
    """Record in the registry which languages the registered model ``name`` writes (ISO codes)."""
    from app.engine import registry
    from app.errors import ModelError

    entries = registry.load()
    if name not in entries:
        raise ModelError(f"no model named '{name}': import it first")
    cleaned = tuple(dict.fromkeys(code for code in (language_code(c) for c in codes) if code))
    if not cleaned:
        raise ModelError("no language given: pass ISO codes such as en,fr,cs")
    entry = entries[name]
    entry.notes = dict(entry.notes or {}, languages=list(cleaned))
    registry.add(entry)
    return cleaned


def languages_of_loaded(loaded) -> ModelLanguages:
    """The languages of a loaded model (its registry entry's notes when it is registered)."""
    notes: dict = {}
    try:
        from app.engine import registry

        entry = registry.load().get(loaded.name)
        notes = dict(entry.notes or {}) if entry else {}
    except Exception:  # an unreadable registry must not stop a summary: assume what is known
        notes = {}
    return model_languages(loaded.name, notes)


def language_code(value: str | None) -> str | None:
    """An ISO code from a code or an English name ("French" -> "fr"); None for None or ""."""
    if not value:
        return None
    text = value.strip().lower()
    if text in LANGUAGE_NAMES or text in EXTRA_NAMES or len(text) == 2:
        return text
    names = dict(_CODES, **{name.lower(): code for code, name in EXTRA_NAMES.items()})
    return names.get(text, text)


def display_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code) or EXTRA_NAMES.get(code) or code


@dataclass(frozen=True)
class SummaryLanguage:
    """The language the summary is asked in, and the notice to show before the run (or "")."""

    code: str
    notice: str


def choose_summary_language(requested: str | None, document: str | None, languages: ModelLanguages,
                            model_label: str = "The model") -> SummaryLanguage:
    """The setting's rule: the requested language, else the document's, where the model writes it;
    otherwise English, with a notice that says so and what to do."""
    wanted = language_code(requested)
    document_code = language_code(document) if document not in (None, "", "und") else None
    target = wanted or document_code or ENGLISH
    writes = ", ".join(display_name(code) for code in languages.codes)
    if languages.writes(target):
        chosen = target
    else:
        chosen = ENGLISH if languages.writes(ENGLISH) else languages.codes[0]
    notice = ""
    if chosen != target and languages.known:
        notice = (f"{model_label} writes {writes}; import a multilingual model for "
                  f"{display_name(target)} summaries.")
    elif chosen != target:
        notice = (f"{model_label} declares no languages, so {display_name(chosen)} is assumed; "
                  f"declare its languages or import a multilingual model for {display_name(target)} summaries.")
    elif document_code and chosen != document_code:
        notice = f"The summary will be in {display_name(chosen)}; the document is in {display_name(document_code)}."
    return SummaryLanguage(chosen, notice)
