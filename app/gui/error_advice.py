"""Error messages for the window: the fixes the engine names as CLI flags, said as the GUI's settings."""

from __future__ import annotations

import re

# (flag as the engine writes it, what to do in the app)
_FLAG_FIXES = (
    (r"--quant (4bit|8bit)", lambda m: f"Quantization {m.group(1)} (Settings or Get models)"),
    (r"--kv-quant int8", lambda m: "Kv quant int8 (Settings, Cache tab)"),
    (r"a smaller cache budget \(--cache sepllm\)", lambda m: "a smaller cache (the Maximum memory saving preset)"),
    (r"a bounded cache \(--cache sepllm\)( of at most (\d+) entries)?",
     lambda m: "the Balanced cache preset" + (f" with at most {m.group(2)} entries" if m.group(2) else "")),
    (r"--cache sepllm", lambda m: "the Balanced cache preset"),
    (r"--device cpu", lambda m: "Device cpu (Settings or Get models)"),
)
# Ran out while running, or refused before loading ("needs 6.1 GB of GPU memory (...), 3.9 GB free").
_OUT_OF_MEMORY = re.compile(r"out of memory|needs [\d.]+ [MG]B of (GPU memory|RAM)", re.IGNORECASE)


def for_window(message: str) -> str:
    """``message`` with CLI flags turned into settings; out-of-memory errors also point to Get models."""
    text = message
    for pattern, fix in _FLAG_FIXES:
        text = re.sub(pattern, fix, text)
    if _OUT_OF_MEMORY.search(message):
        text += " Get models (toolbar) shows which model and quantization fit this machine."
    return text
