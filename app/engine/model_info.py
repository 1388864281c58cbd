"""What a local model folder holds, read from config.json and the safetensors headers (no weights loaded)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ModelError

# Weight files SepSum refuses: they are pickles, and unpickling runs arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_SAFETENSORS_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
# 2-D tensors that stay in the compute dtype under bitsandbytes (embeddings, the output head).
_NOT_QUANTIZED = ("embed", "lm_head", "wte", "wpe")


@dataclass
class TensorGroups:
    """Parameter counts split by how bitsandbytes treats them."""

    linear_params: int = 0  # 2-D weights of Linear layers (quantized by 8bit/4bit)
    linear_rows: int = 0  # their output rows (one 8-bit scale each)
    other_params: int = 0  # embeddings, output head, norms, biases (kept in the compute dtype)
    file_bytes: int = 0  # tensor bytes as stored on disk

    @property
    def parameters(self) -> int:
        return self.linear_params + self.other_params


@dataclass
class ModelInfo:
    """Architecture facts of a safetensors model folder."""

    path: Path
    architecture: str
    model_type: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    max_context: int
    dtype: str
    size_on_disk: int
    has_chat_template: bool
    groups: TensorGroups
    quantization: str | None = None
    config: dict = field(default_factory=dict, repr=False)

    @property
    def parameters(self) -> int:
        return self.groups.parameters


def read_safetensors_header(file: Path) -> dict:
    """The JSON header of one ``.safetensors`` file: ``{name: {dtype, shape, data_offsets}}``."""
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                raise ValueError(f"header length {length} is implausible")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise ModelError(
            f"{file} is not a readable safetensors file ({exc}): re-download or re-export it"
        ) from exc
    header.pop("__metadata__", None)
    return header


def safetensors_files(folder: Path) -> list[Path]:
    """The weight files of a folder (following ``model.safetensors.index.json`` when sharded)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ModelError(f"{folder} lacks shard {missing[0]} listed in its index: copy the whole folder")
        return files
    return sorted(folder.glob("*.safetensors"))


def count_tensors(files: list[Path]) -> TensorGroups:
    groups = TensorGroups()
    for file in files:
        for name, meta in read_safetensors_header(file).items():
            shape = meta["shape"]
            numel = 1
            for size in shape:
                numel *= size
            groups.file_bytes += numel * _SAFETENSORS_BYTES.get(meta["dtype"], 2)
            if len(shape) == 2 and not any(part in name for part in _NOT_QUANTIZED):
                groups.linear_params += numel
                groups.linear_rows += shape[0]
            else:
                groups.other_params += numel
    return groups


def _text_config(config: dict) -> dict:
    """Multimodal configs nest the language model's settings under ``text_config``."""
    return config.get("text_config") or config


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        try:
            return bool(json.loads(tokenizer_config.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, json.JSONDecodeError):
            return False
    return False


def refuse_pickles(folder: Path) -> None:
    """Raise when a folder has weights only as pickles (``pytorch_model.bin`` and friends)."""
    if safetensors_files(folder):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(
            f"{folder} holds weights only as {pickles[0]} (a pickle, which can run code when loaded): "
            "SepSum loads safetensors only; convert it with 'safetensors' or download the safetensors version"
        )
    raise ModelError(
        f"{folder} has no *.safetensors weights: point at a Hugging Face model folder or a .gguf file"
    )


def read_model_info(folder: Path) -> ModelInfo:
    """Read a safetensors model folder's architecture without loading weights."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{folder} has no config.json: point at a Hugging Face model folder or a .gguf file")
    refuse_pickles(folder)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config_file} is unreadable ({exc}): re-download the model") from exc
    text = _text_config(config)
    heads = int(text.get("num_attention_heads") or 0)
    hidden = int(text.get("hidden_size") or 0)
    layers = int(text.get("num_hidden_layers") or 0)
    if not (heads and hidden and layers):
        raise ModelError(
            f"{config_file} lacks hidden_size/num_attention_heads/num_hidden_layers: "
            "SepSum needs a decoder-only language model"
        )
    files = safetensors_files(folder)
    groups = count_tensors(files)
    quant = config.get("quantization_config") or {}
    return ModelInfo(
        path=folder,
        architecture=(config.get("architectures") or [config.get("model_type", "unknown")])[0],
        model_type=str(config.get("model_type", "")),
        layers=layers,
        heads=heads,
        kv_heads=int(text.get("num_key_value_heads") or heads),
        head_dim=int(text.get("head_dim") or hidden // heads),
        hidden_size=hidden,
        intermediate_size=int(text.get("intermediate_size") or 4 * hidden),
        vocab_size=int(text.get("vocab_size") or 0),
        max_context=int(text.get("max_position_embeddings") or 0),
        dtype=str(config.get("dtype") or config.get("torch_dtype") or "unknown"),
        size_on_disk=sum(f.stat().st_size for f in files),
        has_chat_template=_has_chat_template(folder),
        groups=groups,
        quantization=quant.get("quant_method") if quant else None,
        config=config,
    )


def read_gguf_info(file: Path) -> ModelInfo:
    """Read a GGUF file's architecture and tensor sizes from its header (no weights dequantized)."""
    file = Path(file)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(file)
        fields = {
            name: value.contents()
            for name, value in reader.fields.items()
            if not name.startswith("tokenizer.ggml.")
        }
        tensors = [
            (t.name, [int(s) for s in t.shape], int(t.n_elements), int(t.n_bytes)) for t in reader.tensors
        ]
    except Exception as exc:  # noqa: BLE001 - the gguf reader raises anything on a damaged file
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{file.name} is not a readable GGUF file ({detail}): re-download it") from exc
    arch = str(fields.get("general.architecture", ""))
    if not arch or not tensors:
        raise ModelError(f"{file.name} has no architecture or no tensors in its GGUF header: re-download it")

    def meta(key: str, default: int = 0) -> int:
        value = fields.get(f"{arch}.{key}", default)
        return int(value[0] if isinstance(value, list) else value)

    groups = TensorGroups()
    for name, shape, numel, nbytes in tensors:
        groups.file_bytes += nbytes
        if len(shape) == 2 and name not in ("token_embd.weight", "output.weight"):
            groups.linear_params += numel
            groups.linear_rows += shape[1]  # GGUF lists dimensions innermost first
        else:
            groups.other_params += numel
    heads = meta("attention.head_count")
    hidden = meta("embedding_length")
    return ModelInfo(
        path=file,
        architecture=f"{arch} (GGUF)",
        model_type=arch,
        layers=meta("block_count"),
        heads=heads,
        kv_heads=meta("attention.head_count_kv", heads),
        head_dim=meta("attention.key_length")
        or meta("rope.dimension_count")
        or (hidden // heads if heads else 0),
        hidden_size=hidden,
        intermediate_size=meta("feed_forward_length"),
        vocab_size=meta("vocab_size"),
        max_context=meta("context_length"),
        dtype=f"GGUF file type {fields.get('general.file_type', '?')}",
        size_on_disk=file.stat().st_size,
        has_chat_template=bool(fields.get("tokenizer.chat_template")),
        groups=groups,
        config=fields,
    )
