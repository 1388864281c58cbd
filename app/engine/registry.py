"""A small JSON registry of installed and imported models (``models.json`` in the data folder)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app import paths
from app.engine import adapters
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
    shipped = shipped_adapter_entry()
    if shipped is not None:
        add(shipped)


def shipped_adapter_entry() -> ModelEntry | None:
    """The entry of the SepLLM adapter for the default model that ships in ``resources/``, if any."""
    from app.engine.default_model import ADAPTER_NAME, DEFAULT_MODEL_NAME, shipped_adapter_dir

    folder = shipped_adapter_dir()
    if folder is None:
        return None
    return ModelEntry(name=ADAPTER_NAME, path=str(folder), source="adapter", format="adapter",
                      notes={"base": DEFAULT_MODEL_NAME, "adapter": str(folder), "shipped": True})


def default_name() -> str:
    """The model used when none is chosen: the default model, with the shipped adapter when it is on."""
    from app.engine.default_model import ADAPTED_BY_DEFAULT, ADAPTER_NAME, DEFAULT_MODEL_NAME

    return ADAPTER_NAME if ADAPTED_BY_DEFAULT and shipped_adapter_entry() is not None else DEFAULT_MODEL_NAME


def default_label() -> str:
    """How the app names the model used when none is chosen (says whether the shipped adapter is on)."""
    from app.engine.default_model import ADAPTER_NAME

    return "SmolLM2-135M-Instruct, SepLLM-adapted" if default_name() == ADAPTER_NAME else "SmolLM2-135M-Instruct"


def resolve(name_or_path: str | None) -> ModelEntry:
    """A registered name, or a path to a model folder / GGUF file; ``None`` means the default."""
    from app.engine.default_model import ADAPTER_NAME, DEFAULT_MODEL_NAME

    entries = load()
    key = name_or_path or default_name()
    if key in entries:
        return entries[key]
    shipped = shipped_adapter_entry() if key == ADAPTER_NAME else None
    if shipped is not None:  # registered before the adapter shipped
        return shipped
    candidate = Path(key).expanduser()
    if candidate.is_dir() and adapters.is_adapter_folder(candidate):
        info = adapters.read_adapter(candidate)
        return ModelEntry(name=candidate.name, path=str(candidate), source="adapter", format="adapter",
                          notes={"base": info.base, "adapter": str(candidate)})
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


def base_of(entry: ModelEntry) -> ModelEntry:
    """The entry whose folder holds the weights: an adapter's base model, any other entry itself."""
    if entry.source != "adapter":
        return entry
    notes = entry.notes or {}
    base_path = notes.get("base_path")
    if base_path and Path(base_path).is_dir():
        return ModelEntry(name=notes.get("base") or Path(base_path).name, path=base_path, source="folder")
    base = notes.get("base") or adapters.read_adapter(entry.path).base
    if not base:
        raise ModelError(f"{entry.path} does not say which model it adapts: run 'sepsum adapt' again")
    try:
        return resolve(base)
    except ModelError as exc:
        raise ModelError(f"the adapter {entry.name} needs its base model '{base}', which is not available "
                         f"({exc})") from exc
