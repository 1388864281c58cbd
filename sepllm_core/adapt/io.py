"""Adapter files: checkpoints (adapter, optimizer, step), the final adapter with its metadata, loading."""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sepllm_core.adapt.config import AdaptConfig

ADAPT_META = "sepllm_adapt.json"
HISTORY_CSV = "history.csv"
CHECKPOINT_DIR = "checkpoint"
TRAINER_STATE = "trainer_state.pt"


def _save_adapter(model: Any, folder: Path, dtype: torch.dtype | None) -> None:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` atomically (optionally cast)."""
    from safetensors.torch import load_file, save_file

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if dtype is not None:
        weights = tmp / "adapter_model.safetensors"
        tensors = {k: v.to(dtype).contiguous() for k, v in load_file(weights).items()}
        save_file(tensors, weights, metadata={"format": "pt"})
    # Keep non-adapter files already in ``folder`` (metadata, history) when replacing it.
    if folder.exists():
        for item in folder.iterdir():
            if not (tmp / item.name).exists() and item.is_file():
                shutil.copy2(item, tmp / item.name)
        shutil.rmtree(folder)
    tmp.rename(folder)


def save_checkpoint(model: Any, optimizer: torch.optim.Optimizer, step: int, history: list[dict[str, float]],
                    out_dir: Path) -> Path:
    """Adapter (fp32) + optimizer state + step + history under ``out_dir/checkpoint``."""
    folder = out_dir / CHECKPOINT_DIR
    _save_adapter(model, folder, dtype=None)
    state = {"step": step, "optimizer": optimizer.state_dict(), "history": history}
    torch.save(state, folder / (TRAINER_STATE + ".tmp"))
    os.replace(folder / (TRAINER_STATE + ".tmp"), folder / TRAINER_STATE)
    return folder


def load_adapter_weights(model: Any, folder: str | os.PathLike[str], remedy: str) -> None:
    """Load the LoRA weights saved in ``folder`` into the ``PeftModel`` ``model`` (same rank and targets)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        raise ValueError(f"{folder} holds no adapter_model.safetensors: {remedy}")
    weights = load_file(path, device=str(next(model.parameters()).device))
    try:
        result = set_peft_model_state_dict(model, weights)
    except RuntimeError as exc:  # shape mismatch: another rank
        raise ValueError(f"{folder} does not match this model's LoRA ({exc.args[0].splitlines()[0]}): {remedy}") from exc
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"{folder} does not match this model ({len(unexpected)} unexpected adapter "
                         f"weights): {remedy}")


def load_checkpoint(model: Any, optimizer: torch.optim.Optimizer, out_dir: Path
                    ) -> tuple[int, list[dict[str, float]]]:
    """Restore adapter weights and optimizer state; return (step, history). (0, []) when none."""
    folder = out_dir / CHECKPOINT_DIR
    if not (folder / TRAINER_STATE).is_file():
        return 0, []
    load_adapter_weights(model, folder, "use another --out folder or drop --resume")
    state = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["history"])



def save_adapter(model: Any, out_dir: Path, config: AdaptConfig, *, base_model: str,
                 history: list[dict[str, float]], separators: int) -> None:
    """Write the final adapter, its metadata (``sepllm_adapt.json``) and ``history.csv`` into ``out_dir``."""
    dtype = getattr(torch, config.save_dtype) if config.save_dtype else None
    staging = out_dir / "adapter.partial-final"
    _save_adapter(model, staging, dtype=dtype)
    for item in staging.iterdir():
        os.replace(item, out_dir / item.name)
    shutil.rmtree(staging, ignore_errors=True)
    last = history[-1] if history else {}
    meta = {"base_model": base_model, "method": "sepllm-self-distillation", "config": asdict(config),
            "separator_tokens": separators, "steps_done": len(history) and int(last.get("step", 0)),
            "final_kl": last.get("kl"), "final_loss": last.get("loss")}
    (out_dir / ADAPT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    with open(out_dir / HISTORY_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss", "kl", "lm", "lr", "seconds", "answer_kl",
                                                    "answer_lm", "first_value_lm", "route_attention",
                                                    "full_answer_kl"])
        writer.writeheader()
        writer.writerows(history)


def load_adapted(model: Any, adapter_dir: str | os.PathLike[str], *, merge: bool = True) -> Any:
    """Apply a saved adapter to ``model``: merged into the weights (default) or as a ``PeftModel``."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    return peft_model.merge_and_unload() if merge else peft_model
