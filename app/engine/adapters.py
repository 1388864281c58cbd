"""LoRA adapters written by ``sepsum adapt``: their base model, the cache they were trained for, applying them.

An adapter folder holds ``adapter_config.json``, ``adapter_model.safetensors`` and ``sepllm_adapt.json``
(the training settings). It is applied by merging the LoRA weights into the base model once, at
load time, so inference runs the plain model code at the base model's speed. ``sepsum adapt --merge``
writes a merged model folder instead, with the same ``sepllm_adapt.json`` beside its weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import ModelError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED_WEIGHTS = "adapter_model.bin"
META = "sepllm_adapt.json"  # sepllm_core.adapt.ADAPT_META, without importing torch here


@dataclass(frozen=True)
class AdaptedSettings:
    """How a SepLLM-adapted model wants its cache, from ``sepllm_adapt.json``."""

    base: str  # registry name of the base model ("" when the file does not say)
    separators: str  # separator set it was trained with: "default" | "sentence"
    positions: str  # the position mode its read-out from separators was measured with
    steps: int


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file()


def read_settings(folder: str | Path) -> AdaptedSettings | None:
    """The settings in ``folder/sepllm_adapt.json`` (an adapter or a merged model); None without one."""
    file = Path(folder) / META
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{file} is unreadable ({exc}): run 'sepsum adapt' again") from exc
    config = meta.get("config", {})
    # Adapters train on sequences of about 1k tokens, so their separators are read at the distances a
    # cache with renumbered ("shifted") positions keeps: docs/BENCHMARKS.md section 4 measured it.
    return AdaptedSettings(base=str(meta.get("base_model", "")), separators=str(config.get("separators", "default")),
                           positions=str(meta.get("positions", "shifted")), steps=int(meta.get("steps_done") or 0))


def read_adapter(folder: str | Path) -> AdaptedSettings:
    """Check an adapter folder and read its settings; ModelError names the folder and the fix."""
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise ModelError(f"{folder} has no {ADAPTER_CONFIG}: point at a folder written by 'sepsum adapt'")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        pickled = (" (only a pickled adapter_model.bin, which SepSum does not load)"
                   if (folder / PICKLED_WEIGHTS).is_file() else "")
        raise ModelError(f"{folder} has no {ADAPTER_WEIGHTS}{pickled}: run 'sepsum adapt' again to write it")
    return read_settings(folder) or AdaptedSettings(base="", separators="default", positions="shifted", steps=0)


def apply_adapter(model: Any, folder: str | Path) -> Any:
    """Merge the adapter in ``folder`` into ``model`` (safetensors only); returns the merged model."""
    from sepllm_core.adapt import load_adapted

    read_adapter(folder)
    try:
        return load_adapted(model, folder, merge=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"the adapter in {folder} does not fit this model ({detail}): "
                         "use the base model it was trained on") from exc
