"""What this machine offers a model: RAM, the GPU (CUDA or Apple MPS) and disk space for models."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from app import paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Machine:
    """Memory and disk in bytes. ``gpu`` is ``cuda``, ``mps`` or None; its numbers are 0 without one.

    ``ram_free`` and ``gpu_free`` are what the pre-run check compares an estimate with
    (:func:`app.engine.estimate.free_bytes`): available RAM, free CUDA memory.
    """

    ram_total: int
    ram_free: int
    disk_free: int
    gpu: str | None = None
    gpu_name: str = ""
    gpu_total: int = 0
    gpu_free: int = 0
    label: str = "this machine"
    gpu_dtype: str = "bf16"  # what ``devices.choose_dtype`` picks for the GPU (fp16 on MPS and pre-Ampere CUDA)


def probe(models_dir: Path | None = None) -> Machine:
    """Measure this machine now (RAM, GPU memory via CUDA or MPS, free disk where models go)."""
    import psutil

    memory = psutil.virtual_memory()
    folder = models_dir or paths.models_dir()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    disk_free = shutil.disk_usage(existing).free
    gpu, name, total, free = _gpu()
    dtype = "bf16"
    if gpu is not None:
        from app.engine import devices

        dtype = devices.dtype_name(devices.choose_dtype(gpu))
    return Machine(ram_total=int(memory.total), ram_free=int(memory.available), disk_free=int(disk_free),
                   gpu=gpu, gpu_name=name, gpu_total=total, gpu_free=free, gpu_dtype=dtype)


def _gpu() -> tuple[str | None, str, int, int]:
    """(kind, name, total bytes, free bytes) of the first GPU, or (None, "", 0, 0)."""
    try:
        import torch
    except ImportError:
        return None, "", 0, 0
    try:
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(0)
            return "cuda", torch.cuda.get_device_name(0), int(total), int(free)
        backend = getattr(torch.backends, "mps", None)
        if backend is not None and backend.is_available():
            # MPS shares the unified memory; Metal's recommended working set is what a model may use.
            total = int(torch.mps.recommended_max_memory())
            return "mps", "Apple GPU (MPS)", total, max(total - int(torch.mps.driver_allocated_memory()), 0)
    except RuntimeError as exc:  # a broken driver must not break the catalog: report CPU only
        log.warning("could not query the GPU (%s): listing CPU fits only", exc)
    return None, "", 0, 0


def describe(machine: Machine) -> str:
    """One line: ``RAM 24.0 GB (17.1 GB free) · GPU none · disk 120.0 GB free``."""
    from app.engine.estimate import format_bytes

    gpu = (f"{machine.gpu_name} {format_bytes(machine.gpu_total)} ({format_bytes(machine.gpu_free)} free)"
           if machine.gpu else "none")
    return (f"RAM {format_bytes(machine.ram_total)} ({format_bytes(machine.ram_free)} free) · GPU {gpu} · "
            f"disk {format_bytes(machine.disk_free)} free for models")
