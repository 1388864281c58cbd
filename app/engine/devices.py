"""Device and dtype choice: CUDA, else MPS, else CPU; bf16 where the hardware runs it well."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from app.errors import ModelError, ResourceError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "bf16", "fp16", "fp32")
QUANTS = ("none", "8bit", "4bit")

_TORCH_DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# CPU flags that mean bf16 matmuls run in hardware (AVX-512 BF16 or AMX).
_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def choose_device(requested: str = "auto") -> str:
    """Resolve ``auto`` to ``cuda``, else ``mps``, else ``cpu``; check that an explicit choice exists.

    ``cuda:N`` selects one GPU. Raises :class:`ResourceError` when the device is not available.
    """
    import torch

    requested = (requested or "auto").lower()
    kind = requested.split(":", 1)[0]
    if kind not in DEVICES:
        raise ModelError(f"unknown device '{requested}': choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ResourceError(
                f"no CUDA GPU is visible (torch {torch.__version__} is {build}): "
                "install a CUDA build of torch (README, 'NVIDIA GPUs') or use --device cpu"
            )
        if ":" in requested:
            index = int(requested.split(":", 1)[1])
            count = torch.cuda.device_count()
            if not 0 <= index < count:
                raise ResourceError(f"there is no GPU {requested} ({count} visible): use --device cuda:0")
    if kind == "mps" and not _mps_available():
        raise ResourceError("Apple MPS is not available on this machine: use --device cpu")
    return requested


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """True when a ``/proc/cpuinfo`` text lists AVX-512 BF16 or AMX BF16 on its flags line."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(_BF16_CPU_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def cpu_supports_bf16() -> bool:
    """Whether bf16 is the fast dtype on this CPU.

    On Linux the CPU flags decide; elsewhere, oneDNN's own check (AVX-512 class x86 CPUs).
    """
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.exists():
        try:
            if cpu_flags_have_bf16(cpuinfo.read_text(errors="replace")):
                return True
        except OSError:
            pass
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_dtype(device: str, requested: str = "auto"):
    """The torch dtype to load weights and run in on ``device``.

    ``auto``: bf16 on CUDA with compute capability >= 8 and on CPUs with bf16 support; fp16 on
    older GPUs and on MPS; fp32 elsewhere.
    """
    import torch

    requested = (requested or "auto").lower()
    if requested not in DTYPES:
        raise ModelError(f"unknown dtype '{requested}': choose one of {', '.join(DTYPES)}")
    if requested != "auto":
        return getattr(torch, _TORCH_DTYPE_NAMES[requested])
    kind = device.split(":", 1)[0]
    if kind == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``bf16`` (the names the CLI and the stats use)."""
    text = str(dtype).removeprefix("torch.")
    for short, long in _TORCH_DTYPE_NAMES.items():
        if text == long:
            return short
    return text


def dtype_bytes(dtype) -> int:
    """Bytes per element of a torch dtype or a short name (``bf16``)."""
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    return {"bf16": 2, "fp16": 2, "fp32": 4}[name]


def check_quant(quant: str) -> str:
    quant = (quant or "none").lower()
    if quant not in QUANTS:
        raise ModelError(f"unknown quantization '{quant}': choose one of {', '.join(QUANTS)}")
    return quant
