"""``sepsum models import``: register a local Hugging Face folder, or convert a GGUF file once to bf16 safetensors."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from app import paths
from app.engine import registry
from app.engine.estimate import format_bytes
from app.engine.model_info import PICKLE_SUFFIXES, read_gguf_info, read_model_info
from app.engine.registry import ModelEntry
from app.errors import ModelError, ResourceError

log = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def slug(text: str) -> str:
    """A registry name from a file or folder name: ``SmolLM2-135M.Q4_1`` -> ``smollm2-135m.q4_1``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return name or "model"


def check_supported(model_type: str, source: Path) -> None:
    """Refuse architectures transformers does not ship (they would need trust_remote_code)."""
    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise ModelError(
            f"{source.name} is a '{model_type or 'unknown'}' model, which transformers does not implement "
            "and SepSum never runs a model's own code (trust_remote_code): choose a supported architecture"
        )


def find_imported(source: Path) -> ModelEntry | None:
    """The registry entry converted or registered from ``source``, if it is still current."""
    source = source.resolve()
    size = source.stat().st_size if source.is_file() else None
    for entry in registry.load().values():
        notes = entry.notes or {}
        if notes.get("source_path") != str(source):
            continue
        if size is not None and notes.get("source_bytes") != size:
            continue
        if Path(entry.path).exists():
            return entry
    return None


def import_model(
    path: str | Path, name: str | None = None, *, force: bool = False
) -> tuple[ModelEntry, bool]:
    """Register a model folder or convert a GGUF file; return (entry, newly imported).

    Idempotent: importing the same source again returns the existing entry unless ``force``.
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise ModelError(f"{source} does not exist: give a Hugging Face model folder or a .gguf file")
    source = source.resolve()
    if source.is_file() and source.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            f"{source.name} is a pickle (which can run code when loaded): "
            "SepSum imports safetensors folders and .gguf files only"
        )
    if source.is_file() and source.suffix.lower() != ".gguf":
        raise ModelError(
            f"{source.name} is neither a model folder nor a .gguf file: "
            "give a Hugging Face folder with *.safetensors or a .gguf file"
        )
    existing = find_imported(source)
    if existing and not force and (name is None or name == existing.name):
        return existing, False
    name = slug(name) if name else slug(source.stem if source.is_file() else source.name)
    taken = registry.load().get(name)
    if taken and (taken.notes or {}).get("source_path") != str(source) and not force:
        raise ModelError(
            f"a model named '{name}' is already registered ({taken.path}): pass --name to choose another"
        )
    entry = _import_gguf(source, name) if source.is_file() else _import_folder(source, name)
    registry.add(entry)
    return entry, True


def _import_folder(folder: Path, name: str) -> ModelEntry:
    info = read_model_info(folder)  # refuses pickles and folders without config/safetensors
    check_supported(info.model_type, folder)
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelError(
            f"{folder} has no tokenizer files (tokenizer.json or tokenizer.model): copy them from the model"
        )
    log.info("registering %s (%s, %.0f M parameters)", folder, info.architecture, info.parameters / 1e6)
    return ModelEntry(
        name=name,
        path=str(folder),
        source="folder",
        format="safetensors",
        notes={"source_path": str(folder), "architecture": info.architecture},
    )


def _import_gguf(file: Path, name: str) -> ModelEntry:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    from app.engine.default_model import convert_gguf

    info = read_gguf_info(file)  # a damaged file fails here, before any conversion
    if info.model_type not in GGUF_SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"{file.name} is a '{info.model_type}' GGUF, which transformers cannot read: "
            "use the model's Hugging Face safetensors folder instead"
        )
    out_dir = paths.ensure(paths.models_dir()) / name
    _check_room_for_conversion(file, out_dir.parent, bf16_bytes=2 * info.parameters)
    log.info(
        "converting %s (%.0f M parameters) to bf16 safetensors in %s",
        file.name,
        info.parameters / 1e6,
        out_dir,
    )
    try:
        convert_gguf(file, out_dir)
    except (ModelError, ResourceError):
        raise
    except MemoryError as exc:
        raise ResourceError(
            f"ran out of memory converting {file.name}: close other programs and retry"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - transformers' GGUF loader raises many kinds
        shutil.rmtree(out_dir.with_name(out_dir.name + ".partial"), ignore_errors=True)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{file.name} could not be converted ({detail}): "
            "use the model's Hugging Face safetensors folder instead"
        ) from exc
    return ModelEntry(
        name=name,
        path=str(out_dir),
        source="gguf",
        format="safetensors",
        notes={
            "source_path": str(file),
            "source_bytes": file.stat().st_size,
            "architecture": info.model_type,
        },
    )


def _check_room_for_conversion(file: Path, models_dir: Path, bf16_bytes: int) -> None:
    """Converting dequantizes the whole model in RAM and writes it in bf16: check both before starting."""
    import psutil

    disk_free = shutil.disk_usage(models_dir).free
    if disk_free < bf16_bytes * 1.05:
        raise ResourceError(
            f"converting {file.name} writes {format_bytes(bf16_bytes)} to {models_dir}, "
            f"{format_bytes(disk_free)} free there: free disk space or set SEPSUM_HOME elsewhere"
        )
    ram_needed = 2 * bf16_bytes + 500_000_000
    ram_free = psutil.virtual_memory().available
    if ram_free < ram_needed:
        raise ResourceError(
            f"converting {file.name} needs about {format_bytes(ram_needed)} of RAM, "
            f"{format_bytes(ram_free)} free: close other programs or use its safetensors folder"
        )
