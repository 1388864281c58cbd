"""Typed errors raised by the app; the CLI and GUI translate them at the boundary.

Every message is one line that names the file or model, says what happened and
what to do: "report.pdf is encrypted: pass --password or open it in the app to type one".
"""

from __future__ import annotations


class SepSumError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class DocumentError(SepSumError):
    """A document cannot be read (corrupt, empty, image-only, too large, malformed export)."""

    exit_code = 3


class PasswordRequired(DocumentError):
    """An encrypted PDF needs a password (or the one given is wrong: ``wrong_password``)."""

    def __init__(self, message: str, *, path: str = "", wrong_password: bool = False):
        super().__init__(message)
        self.path = path
        self.wrong_password = wrong_password


class ModelError(SepSumError):
    """A model cannot be found, installed, imported or loaded."""

    exit_code = 4


class DownloadError(ModelError):
    """A model download failed: no network, access refused (gated), wrong revision, disk full, corrupted file."""


class ResourceError(SepSumError):
    """Not enough memory (RAM, GPU) for the chosen settings, or CUDA ran out mid-run."""

    exit_code = 5


class Cancelled(SepSumError):
    """The user stopped the run (Stop button, Ctrl-C)."""

    exit_code = 130
