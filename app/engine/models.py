"""Load a model for inference: resolve it, pick device and dtype, quantize with bitsandbytes, check memory first."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import library_noise, offline
from app.engine import devices, registry
from app.engine.adapters import apply_adapter, read_adapter, read_settings
from app.engine.estimate import FOUR_BIT_SOURCES, check_fits, estimate_memory
from app.engine.memory import out_of_memory_as_resource_error
from app.engine.model_info import read_model_info
from app.engine.registry import ModelEntry
from app.errors import ModelError

log = logging.getLogger(__name__)

DECODE_WEIGHTS = ("auto", "bf16", "int4")
"""Choices for the weights the CPU decode step reads (see :func:`load_model`)."""

# Tokens assumed by the pre-load memory check; the pipeline checks again with the real document.
_PRELOAD_CHECK_TOKENS = 2048


@dataclass
class LoadedModel:
    """A model ready for inference and the facts the stats report."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str  # bf16 | fp16 | fp32
    quant: str  # none | 8bit | 4bit
    name: str
    path: Path
    weights_bytes: int  # parameters and buffers as held on the device
    load_seconds: float
    packed_layers: int = 0  # linear layers prepacked for oneDNN (CPU bf16 inference only)
    decode_weights: str = "model"  # int4 | bf16 (CPU decode step) | model (the model's own weights)
    variant: str = "base"  # "base", or the label of the SepLLM adapter merged into it
    separators: str = "default"  # separator set the model was adapted for (sepllm_core.adapt.SEPARATOR_SETS)
    positions: str = ""  # the cache position mode an adapted model wants ("" : no preference)
    separator_table: Any = None  # BoolTensor [vocab] of ``separators``; None for the default set


def resolve_model(name_or_path: str | None) -> ModelEntry:
    """A registered name, a model folder or a GGUF file (imported, i.e. converted, on first use)."""
    entry = registry.resolve(name_or_path)
    if entry.format == "gguf":
        from app.engine.importer import find_imported, import_model

        source = Path(entry.path)
        entry = find_imported(source) or import_model(source)[0]
    return entry


def _int4_copy_bytes(model) -> int:
    """Bytes of the decode step's 4-bit weight copies (``pack_linears``): not parameters, but held all the same."""
    copies = (getattr(module, "int4", None) for module in model.modules())
    return sum(copy.nbytes for copy in copies if copy is not None)


def quantization_config(quant: str, compute_dtype):
    """bitsandbytes settings for ``8bit`` (LLM.int8) or ``4bit`` (nf4); None for ``none``."""
    if quant == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype
    )


def load_model(
    name_or_path: str | None = None,
    device: str = "auto",
    quant: str = "none",
    dtype: str = "auto",
    *,
    check_memory: bool = True,
    pack: bool = False,
    decode_weights: str = "auto",
) -> LoadedModel:
    """Load a model and its tokenizer from local safetensors only (never remote code, never the hub).

    Parameters
    ----------
    name_or_path : a registered name, a model folder or a GGUF file; None is the default model.
    device : auto (CUDA, else MPS, else CPU) | cpu | cuda[:N] | mps.
    quant : none | 8bit | 4bit (bitsandbytes; works on CPU and CUDA).
    dtype : auto (bf16 where the hardware has it) | bf16 | fp16 | fp32.
    check_memory : estimate weights + a 2048-token full cache first and refuse with numbers if it cannot fit.
    pack : for inference only: prepack the linear layers of a bf16 model on CPU for oneDNN
        (``sepllm_core.packing.pack_linears``: bit-equal outputs, faster decode, no extra
        memory). The packed model cannot be trained or saved; ``sepsum adapt`` loads unpacked.
    decode_weights : with ``pack``: the weights the CPU decode step reads. ``bf16``: the model's
        (bit-equal logits); ``int4``: a 4-bit copy (``sepllm_core.int4``; ~1.3x faster decode on the
        default model, +0.625 byte per decoder parameter, rounding loss on models that were not 4-bit);
        ``auto``: int4 when the weights are 4-bit already (imported from a Q4 GGUF, as the default
        model), where the copy loses nothing but bf16 rounding; bf16 otherwise.
    """
    offline.enforce()
    library_noise.silence()  # also for callers that skip the CLI's start-up (benchmarks, tests)
    if decode_weights not in DECODE_WEIGHTS:
        raise ModelError(f"decode weights {decode_weights!r} not known: use one of {', '.join(DECODE_WEIGHTS)}")
    quant = devices.check_quant(quant)
    device = devices.choose_device(device)
    torch_dtype = devices.choose_dtype(device, dtype)
    entry = resolve_model(name_or_path)
    adapter = read_adapter(entry.path) if entry.source == "adapter" else None
    folder = Path(registry.base_of(entry).path)
    adapted = adapter or read_settings(folder)  # an adapter, or a model merged by 'sepsum adapt --merge'
    info = read_model_info(folder)  # refuses pickles, missing config, unreadable headers
    if info.quantization and quant != "none":
        raise ModelError(f"{entry.name} is already quantized ({info.quantization}): use --quant none")
    from app.engine.importer import check_supported

    check_supported(info.model_type, folder)
    if check_memory:
        check_fits(estimate_memory(str(folder), device, quant, None, _PRELOAD_CHECK_TOKENS, dtype,
                                   decode_weights=decode_weights if pack else "bf16",
                                   four_bit_source=entry.source in FOUR_BIT_SOURCES))

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    kwargs = dict(
        dtype=torch_dtype,
        use_safetensors=True,
        trust_remote_code=False,
        local_files_only=True,
        device_map={"": device},
        quantization_config=quantization_config(quant, torch_dtype),
    )
    try:
        with out_of_memory_as_resource_error(f"loading {entry.name}", device):
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, ImportError, KeyError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{entry.name} could not be loaded from {folder} ({detail}): "
            "re-import it or reinstall with 'sepsum models install-default --force'"
        ) from exc
    if adapter is not None:  # merged before packing: inference runs the plain model code
        model = apply_adapter(model, entry.path)
    table = None
    if adapted is not None and adapted.separators != "default":
        from sepllm_core.adapt import separator_lookup

        table = separator_lookup(tokenizer, adapted.separators)
    model.eval()
    packed = 0
    if pack and device == "cpu" and quant == "none":
        from sepllm_core.packing import pack_linears

        packed = pack_linears(model, int4_decode={"auto": "on_grid", "int4": "on", "bf16": "off"}[decode_weights])
    elif decode_weights == "int4":
        log.warning("int4 decode weights are for bf16 models on the CPU: %s on %s (quant %s) decodes with its "
                    "own weights", entry.name, device, quant)
    seconds = time.perf_counter() - started
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=devices.dtype_name(torch_dtype),
        quant=quant,
        name=entry.name,
        path=folder,
        weights_bytes=int(model.get_memory_footprint()) + _int4_copy_bytes(model),
        load_seconds=seconds,
        packed_layers=packed,
        decode_weights=("int4" if getattr(model, "_sepllm_int4", False)
                        else "bf16" if packed else "model"),
        variant=f"SepLLM-adapted ({entry.name})" if adapted else "base",
        separators=adapted.separators if adapted else "default",
        positions=adapted.positions if adapted else "",
        separator_table=table,
    )
    log.info(
        "loaded %s (%s) on %s (%s, quant %s, decode weights %s): %.0f MB in %.1f s",
        loaded.name,
        loaded.variant,
        device,
        loaded.dtype,
        quant,
        loaded.decode_weights,
        loaded.weights_bytes / 1e6,
        seconds,
    )
    return loaded
