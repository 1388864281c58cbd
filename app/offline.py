"""Hub offline switches: SepSum never fetches from a model hub at run time, only in a requested download."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_lifted = threading.Lock()  # one download at a time lifts the switches


def enforce() -> None:
    """Set the offline switches before transformers or huggingface_hub is imported."""
    for name, value in _SWITCHES.items():
        os.environ.setdefault(name, value)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported already: it read the environment once, at import
        hub.HF_HUB_OFFLINE = True


def is_enforced() -> bool:
    """Whether the hub would refuse a request now (its own flag, read at request time)."""
    hub = sys.modules.get("huggingface_hub.constants")
    return os.environ.get("HF_HUB_OFFLINE") == "1" and (hub is None or bool(hub.HF_HUB_OFFLINE))


@contextmanager
def network_allowed() -> Iterator[None]:
    """Lift the hub's offline switch for a user-requested download; set it again on the way out."""
    from huggingface_hub import constants

    with _lifted:
        os.environ["HF_HUB_OFFLINE"] = "0"
        constants.HF_HUB_OFFLINE = False
        try:
            yield
        finally:
            enforce()
