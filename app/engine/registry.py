"""A small JSON registry of installed and imported models (``models.json`` in the data folder)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app import paths
from app.errors import ModelError


@dataclass
class ModelEntry:
    name: str
    path: str
    source: str  # "default" | "folder" | "gguf" | "adapter"
    format: str = "safetensors"
    notes: dict = field(default_factory=dict)


def load() -> dict[str, ModelEntry]:
    file = paths.registry_file()
    if not file.exists():
        return {}
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{file} is unreadable ({exc}): delete it and run 'sepsum models install-default'"
        ) from exc
    return {name: ModelEntry(**entry) for name, entry in raw.get("models", {}).items()}


def save(entries: dict[str, ModelEntry]) -> None:
    file = paths.registry_file()
    paths.ensure(file.parent)
    tmp = file.with_suffix(".tmp")
    payload = {"models": {name: asdict(entry) for name, entry in sorted(entries.items())}}
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, file)


def add(entry: ModelEntry) -> None:
    entries = load()
    entries[entry.name] = entry
    save(entries)


def register_default(folder: Path) -> None:
    from app.engine.default_model import DEFAULT_MODEL_NAME

    add(ModelEntry(name=DEFAULT_MODEL_NAME, path=str(folder), source="default"))


def resolve(name_or_path: str | None) -> ModelEntry:
    """A registered name, or a path to a model folder / GGUF file; ``None`` means the default."""
    from app.engine.default_model import DEFAULT_MODEL_NAME

    entries = load()
    key = name_or_path or DEFAULT_MODEL_NAME
    if key in entries:
        return entries[key]
    candidate = Path(key).expanduser()
    if candidate.exists():
        fmt = "gguf" if candidate.suffix.lower() == ".gguf" else "safetensors"
        return ModelEntry(name=candidate.name, path=str(candidate), source="path", format=fmt)
    if key == DEFAULT_MODEL_NAME:
        from app.engine.default_model import bundled_model_dir

        bundled = bundled_model_dir()
        if bundled is not None:  # first start of the desktop bundle: use the model it carries
            return ModelEntry(name=key, path=str(bundled), source="bundled")
        raise ModelError("the default model is not installed: run 'sepsum models install-default'")
    known = ", ".join(sorted(entries)) or "none"
    raise ModelError(f"no model named '{key}' (registered: {known}): run 'sepsum models list' or import it")
