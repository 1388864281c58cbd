"""One settings schema: it drives the CLI flags, the GUI settings dialog and ``settings.json``.

Precedence: a flag given on the command line, then the saved ``settings.json``, then the
schema default. A value of ``None`` for a cache budget means "the default of sepllm_core".
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import paths
from app.errors import SepSumError


@dataclass(frozen=True)
class Setting:
    """One user setting. ``type`` is ``str``, ``int`` or ``bool``; ``choices`` limits the values."""

    name: str
    default: Any
    type: type
    help: str
    choices: tuple[str, ...] | None = None
    group: str = "summary"  # "model" | "summary" | "cache": sections of the settings dialog
    minimum: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SCHEMA: tuple[Setting, ...] = (
    Setting("model", None, str, "registered model name or a path to a model folder or GGUF file "
            "(default: the embedded SmolLM2-135M-Instruct)", group="model"),
    Setting("device", "auto", str, "where the model runs: auto picks CUDA, then MPS, then the CPU",
            choices=("auto", "cpu", "cuda", "mps"), group="model"),
    Setting("quant", "none", str, "weight quantization through bitsandbytes (4bit needs the least memory)",
            choices=("none", "8bit", "4bit"), group="model"),
    Setting("decode_weights", "auto", str, "CPU: the weights used to write the summary: bf16 (exact), int4 "
            "(a 4-bit copy: about 1.3x faster writing, 0.625 byte more per parameter, some rounding loss "
            "unless the model was 4-bit already) or auto (int4 only when the model was 4-bit already, "
            "as the embedded default model is: then nothing is lost)",
            choices=("auto", "bf16", "int4"), group="model"),
    Setting("cache", "sepllm", str, "KV cache while reading: sepllm (separators + recent window, bounded), "
            "window (recent tokens only, bounded) or full (everything, grows with the document)",
            choices=("sepllm", "full", "window"), group="cache"),
    Setting("mode", "auto", str, "passages: the document's key passages, chosen by the model's attention "
            "(its own words, no writing); single: one pass through the cache; notes: one pass that writes notes "
            "into a protected region; mapreduce: summaries of chunks, then of the summaries; truncate: "
            "only the first tokens that fit the context; auto: the passages, which scored the highest ROUGE-L on "
            "the dev sets with the default model (docs/benchmarks/summary_quality.md)",
            choices=("auto", "single", "notes", "mapreduce", "truncate", "passages")),
    Setting("length", "medium", str, "summary length (short about 3 points, medium 5, long 8)",
            choices=("short", "medium", "long")),
    Setting("style", "bullets", str, "bullets, paragraphs, or structured (key points, decisions, "
            "action items, who said what)", choices=("bullets", "paragraphs", "structured")),
    Setting("kind", "auto", str, "kind of document, which sets what the summary looks for",
            choices=("auto", "report", "paper", "book", "meeting", "chat")),
    Setting("language", None, str, "language of the summary, a name or an ISO code (default: the document's "
            "language where the model writes it, else English; a model is never asked for a language it does "
            "not write: the default model writes English)"),
    Setting("cache_initial", None, int, "cache: first tokens always kept (attention sinks)",
            group="cache", minimum=0),
    Setting("cache_separators", None, int, "cache: separator tokens kept (sepllm policy)",
            group="cache", minimum=0),
    Setting("cache_local", None, int, "cache: most recent tokens kept", group="cache", minimum=1),
    Setting("cache_max_entries", None, int, "cache: most entries held per layer (the memory bound)",
            group="cache", minimum=16),
    Setting("chunk_size", None, int, "tokens read per forward pass", group="cache", minimum=1),
    Setting("kv_quant", "none", str, "cache: how keys and values are stored: none (the model's dtype) or int8 "
            "(a byte a value plus a scale per token and head: 0.52x the memory of bf16, so twice the "
            "entries fit the same memory; decoding is slower)", choices=("none", "int8"), group="cache"),
    Setting("notes_every", 1024, int, "notes mode: document tokens read between two notes",
            group="cache", minimum=128),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SCHEMA}

# Settings whose values become SummaryRequest.cache_budget keys.
CACHE_BUDGET_KEYS = {
    "cache_initial": "initial",
    "cache_separators": "separators",
    "cache_local": "local",
    "cache_max_entries": "max_entries",
    "chunk_size": "chunk",
}


class SettingsError(SepSumError):
    """A setting has a value outside its type or choices (flag or settings.json)."""

    exit_code = 2


def defaults() -> dict[str, Any]:
    return {setting.name: setting.default for setting in SCHEMA}


def validate(name: str, value: Any) -> Any:
    """Return ``value`` converted to the setting's type; raise SettingsError when it does not fit."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise SettingsError(f"unknown setting '{name}': known are {', '.join(BY_NAME)}")
    if value is None:
        return None
    try:
        if setting.type is bool and isinstance(value, str):
            converted: Any = value.strip().lower() in {"1", "true", "yes", "on"}
        else:
            converted = setting.type(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting '{name}' must be {setting.type.__name__}, got {value!r}") from None
    if setting.choices and converted not in setting.choices:
        raise SettingsError(f"setting '{name}' must be one of {', '.join(setting.choices)}, got {value!r}")
    if setting.minimum is not None and converted < setting.minimum:
        raise SettingsError(f"setting '{name}' must be at least {setting.minimum}, got {value!r}")
    return converted


def load(file: Path | None = None) -> dict[str, Any]:
    """Defaults overlaid with the saved file; unknown keys in the file are ignored."""
    file = file or paths.settings_file()
    values = defaults()
    if not file.exists():
        return values
    try:
        saved = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{file} is unreadable ({exc}): fix or delete it") from exc
    if not isinstance(saved, dict):
        raise SettingsError(f"{file} must hold a JSON object: fix or delete it")
    for name, value in saved.items():
        if name in BY_NAME:
            values[name] = validate(name, value)
    return values


def save(values: dict[str, Any], file: Path | None = None) -> Path:
    """Write the values that differ from the defaults (validated) to ``settings.json``."""
    file = file or paths.settings_file()
    clean = {name: validate(name, value) for name, value in values.items() if name in BY_NAME}
    changed = {name: value for name, value in clean.items() if value != BY_NAME[name].default}
    paths.ensure(file.parent)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(changed, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, file)
    return file


def add_arguments(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """Add one flag per setting; an absent flag parses to None so the saved value applies."""
    for setting in SCHEMA:
        if names is not None and setting.name not in names:
            continue
        kwargs: dict[str, Any] = {"dest": setting.name, "default": None, "help": setting.help}
        if setting.choices:
            kwargs["choices"] = setting.choices
        elif setting.type is int:
            kwargs["type"] = int
            kwargs["metavar"] = "N"
        else:
            kwargs["metavar"] = setting.name.upper()
        parser.add_argument(setting.flag, **kwargs)


def from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The effective values: flags given on the command line over ``base`` (default: ``load()``)."""
    values = dict(base if base is not None else load())
    for setting in SCHEMA:
        given = getattr(args, setting.name, None)
        if given is not None:
            values[setting.name] = validate(setting.name, given)
    return values


def cache_budget(values: dict[str, Any]) -> dict[str, int]:
    """The ``SummaryRequest.cache_budget`` dict: only the budgets the user set."""
    return {key: int(values[name]) for name, key in CACHE_BUDGET_KEYS.items() if values.get(name) is not None}
