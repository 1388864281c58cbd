"""Makes None, True and False immortal under PySide6 6.12 on CPython 3.11, which drops references to them.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every signal delivered to a Python
slot releases one reference to ``True`` it never took, and every QVariant that converts to
``None`` (``index.data()`` of an unset role, ``setData(role, None)``, an unset ``property()``)
releases one to ``None``. CPython 3.12+ makes these singletons immortal, so the bug is harmless
there; on 3.11 the count reaches zero after enough signals and the process aborts with
"Fatal Python error: bool_dealloc / none_dealloc", at the latest when the interpreter exits.

The guard does what CPython 3.12 does: it raises the three reference counts by 2**30, so
no realistic number of dropped references can reach zero. The app also keeps None out of Qt data.
"""

from __future__ import annotations

import ctypes
import platform
import sys

BOOST = 1 << 30
_done = False


def needed() -> bool:
    """Only CPython before 3.12 has mortal singletons."""
    return platform.python_implementation() == "CPython" and sys.version_info < (3, 12)


def install() -> bool:
    """Raise the reference counts of None, True and False once per process; True if it did."""
    global _done
    if _done or not needed():
        return False
    for value in (None, True, False):
        # ob_refcnt is the first field of every CPython object (Py_ssize_t).
        ctypes.c_ssize_t.from_address(id(value)).value += BOOST
    _done = True
    return True
