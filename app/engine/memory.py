"""Live memory samples (RSS, GPU) for the memory panel and the stats; out-of-memory turned into ResourceError."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from app.errors import ResourceError

_CPU_OOM_MARKERS = ("can't allocate memory", "not enough memory", "out of memory")


def _peak_rss_bytes(current: int) -> int:
    """The process's peak resident set size.

    On Linux from ``VmHWM`` in /proc/self/status: ``ru_maxrss`` survives ``exec`` there, so a child
    started from a large process would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(int(line.split()[1]) * 1024, current)
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", current))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(int(peak if sys.platform == "darwin" else peak * 1024), current)


def _cuda_ready():
    """torch, if it is imported and CUDA is already initialised (sampling must never start CUDA)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch


def sample_memory() -> dict[str, int]:
    """RSS now and at peak, and CUDA memory allocated / reserved / peak-allocated (0 without CUDA)."""
    import psutil

    rss = int(psutil.Process().memory_info().rss)
    sample = {
        "rss_bytes": rss,
        "peak_rss_bytes": _peak_rss_bytes(rss),
        "gpu_allocated_bytes": 0,
        "gpu_reserved_bytes": 0,
        "gpu_peak_bytes": 0,
    }
    torch = _cuda_ready()
    if torch is not None:
        sample["gpu_allocated_bytes"] = int(torch.cuda.memory_allocated())
        sample["gpu_reserved_bytes"] = int(torch.cuda.memory_reserved())
        sample["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    return sample


def reset_gpu_peak() -> None:
    """Start a new GPU peak measurement (a no-op without CUDA)."""
    torch = _cuda_ready()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors and a failed CPU allocation."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _CPU_OOM_MARKERS)


@contextlib.contextmanager
def out_of_memory_as_resource_error(what: str, device: str = "cpu") -> Iterator[None]:
    """Turn an out-of-memory error inside the block into a one-line :class:`ResourceError`.

    ``what`` names the work ("summarizing report.pdf"); the message adds the memory in use and the fix.
    The CUDA caching allocator is emptied so the process can carry on.
    """
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):
            raise
        raise ResourceError(_oom_message(what, device)) from exc


def _oom_message(what: str, device: str) -> str:
    from app.engine.estimate import format_bytes

    sample = sample_memory()
    if device.startswith("cuda"):
        torch = sys.modules["torch"]
        torch.cuda.empty_cache()
        _free, total = torch.cuda.mem_get_info()
        used = (
            f"{format_bytes(sample['gpu_peak_bytes'])} of {format_bytes(total)} GPU memory in use at the peak"
        )
        fix = "choose --quant 4bit, a smaller cache budget (--cache sepllm) or --device cpu"
        return f"CUDA ran out of memory while {what} ({used}): {fix}"
    used = f"{format_bytes(sample['peak_rss_bytes'])} RAM at the peak"
    return (
        f"ran out of memory while {what} ({used}): close other programs, "
        "choose --quant 4bit or a smaller cache budget (--cache sepllm)"
    )
