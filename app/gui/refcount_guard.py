"""Keeps None, True and False alive under PySide6 6.12 on CPython 3.11, which drops references to them.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every signal delivered to a Python
slot releases one reference to ``True`` it never took, and every QVariant that converts to
``None`` (``index.data()`` of an unset role, ``setData(role, None)``, an unset ``property()``)
releases one to ``None``. CPython 3.12+ makes these singletons immortal, so the bug is harmless
there; on 3.11 the count reaches zero after enough signals and the process aborts with
"Fatal Python error: bool_dealloc / none_dealloc".

The guard holds a reserve of references and tops it up when a singleton's count falls below a
low-water mark; it costs 8 bytes per leaked reference. The code also avoids None in Qt data.
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

RESERVE = 250_000  # references added per top-up, per singleton (2 MB)
CHECK_MS = 2_000
_SINGLETONS = (None, True, False)
_reserve: list[object] = []
_timer: QTimer | None = None


def needed() -> bool:
    """Only interpreters without immortal singletons need the guard."""
    return sys.version_info < (3, 12)


def top_up() -> int:
    """Add a reserve for every singleton whose count is below the reserve; return how many were topped up."""
    added = 0
    for value in _SINGLETONS:
        if sys.getrefcount(value) < RESERVE:
            _reserve.extend([value] * RESERVE)
            added += 1
    if added and len(_reserve) > 3 * RESERVE:
        log.debug("PySide6 refcount guard topped up: %d references held", len(_reserve))
    return added


def install(parent: QObject) -> None:
    """Fill the reserve now and check it every couple of seconds (a timer owned by ``parent``)."""
    global _timer
    if not needed() or _timer is not None:
        return
    top_up()
    _timer = QTimer(parent)
    _timer.setInterval(CHECK_MS)
    _timer.timeout.connect(top_up)
    _timer.start()
    parent.destroyed.connect(_forget)


def _forget(*_args) -> None:
    global _timer
    _timer = None
