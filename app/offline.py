"""Hub offline switches: SepSum never fetches from a model hub at run time."""

from __future__ import annotations

import os

_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def enforce() -> None:
    """Set the offline switches before transformers or huggingface_hub is imported."""
    for name, value in _SWITCHES.items():
        os.environ.setdefault(name, value)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
