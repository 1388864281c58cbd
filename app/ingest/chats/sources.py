"""Read export files safely: size limits, zip-bomb limits, no links out of an export folder."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from app.errors import DocumentError
from app.ingest.chats.assemble import one_line

MiB = 1024 * 1024
# What zipfile raises on damaged archives besides BadZipFile (unsupported versions and methods, bad
# headers, encrypted members, truncated streams).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
               ValueError, struct.error, zlib.error, KeyError, IndexError, OverflowError)


@dataclass(frozen=True)
class ChatLimits:
    """Per-export limits so a hostile file cannot exhaust memory or time.

    max_file_bytes: largest single file read (a JSON or .txt export, or one zip member).
    max_total_bytes: most bytes read from one export folder or zip, uncompressed.
    max_zip_ratio: largest uncompressed/compressed ratio allowed for a zip and for any member over 1 MiB.
    max_entries: most files considered in one export folder or zip.
    """

    max_file_bytes: int = 256 * MiB
    max_total_bytes: int = 512 * MiB
    max_zip_ratio: float = 100.0
    max_entries: int = 200_000

    @classmethod
    def from_any(cls, limits: Any) -> ChatLimits:
        """Accept None, a ChatLimits, or any object with some of these (or Limits') attribute names."""
        if limits is None or isinstance(limits, ChatLimits):
            return limits or cls()
        values = {}
        # app.ingest.limits.Limits names: max_unpacked_bytes, max_zip_members.
        for ours, theirs in (("max_file_bytes", "max_file_bytes"), ("max_total_bytes", "max_unpacked_bytes"),
                             ("max_zip_ratio", "max_zip_ratio"), ("max_entries", "max_zip_members")):
            value = getattr(limits, ours, None)
            if value is None:
                value = getattr(limits, theirs, None)
            if value is not None:
                values[ours] = value
        return cls(**values)


def size_text(count: float) -> str:
    return f"{count / MiB:.1f} MiB" if count >= MiB else f"{int(count)} bytes"


def read_file(path: Path, limits: ChatLimits, shown: str | None = None) -> bytes:
    """Whole file, refusing files over ``max_file_bytes`` with a clear message."""
    name = shown or path.name
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise DocumentError(
                f"{name} is {size_text(size)}, over the {size_text(limits.max_file_bytes)} limit for one "
                "chat export file: split the export or raise the limit"
            )
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise DocumentError(f"{name} cannot be read ({exc.strerror or exc}): check the path and permissions") from None
    if len(data) > limits.max_file_bytes:
        raise DocumentError(f"{name} grew past the {size_text(limits.max_file_bytes)} limit while reading")
    return data


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """Decode exported text: UTF-8 (with or without BOM) or UTF-16 with BOM; else replace bad bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), []
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8-sig", errors="replace")
        return text, [f"invalid UTF-8 from byte {exc.start}: unreadable characters were replaced"]


def parse_json(data: bytes, name: str) -> Any:
    """Parse JSON bytes (BOM allowed) or raise a one-line DocumentError with the position."""
    text, _ = decode_text(data)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): "
            "the export may be cut short; export it again"
        ) from None
    except RecursionError:
        raise DocumentError(f"{name} nests JSON too deeply to read: it is not a chat export") from None


class ExportTree:
    """Files of an export folder or zip, addressed by POSIX paths relative to its root.

    Folder: links that resolve outside the folder are skipped (and reported in ``warnings``).
    Zip: the total uncompressed size, the compression ratio and the entry count are checked up
    front, and each member read stops at its declared size.
    """

    def __init__(self, path: Path, limits: ChatLimits):
        self.path = path
        self.limits = limits
        self.warnings: list[str] = []
        self._bytes_read = 0
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._files: dict[str, Path] = {}
        if path.is_dir():
            self._scan_folder()
        else:
            self._open_zip()

    # -- listing -----------------------------------------------------------------------------
    def _scan_folder(self) -> None:
        root = self.path.resolve()
        skipped = 0
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_symlink():
                    target = entry.resolve()
                    if not target.is_relative_to(root):
                        skipped += 1
                        continue
                if entry.is_dir():
                    if not entry.is_symlink():  # never recurse through links (loops)
                        stack.append(entry)
                elif entry.is_file():
                    self._files[entry.relative_to(root).as_posix()] = entry
                if len(self._files) > self.limits.max_entries:
                    raise DocumentError(
                        f"{self.path.name} holds more than {self.limits.max_entries} files: "
                        "choose the export folder itself, not a folder above it"
                    )
        if skipped:
            self.warnings.append(f"skipped {skipped} link(s) pointing outside the export folder")

    def _open_zip(self) -> None:
        name = self.path.name
        try:
            self._zip = zipfile.ZipFile(self.path)
            infos = self._zip.infolist()
        except _ZIP_ERRORS as exc:
            raise DocumentError(one_line(f"{name} is not a readable zip ({exc}): download or export it again"))\
                from None
        if len(infos) > self.limits.max_entries:
            raise DocumentError(f"{name} has {len(infos)} entries, over the limit of {self.limits.max_entries}")
        total = sum(info.file_size for info in infos)
        packed = sum(info.compress_size for info in infos)
        if total > self.limits.max_total_bytes:
            raise DocumentError(
                f"{name} unpacks to {size_text(total)}, over the {size_text(self.limits.max_total_bytes)} "
                "limit: export fewer channels or raise the limit"
            )
        ratio_limit = self.limits.max_zip_ratio
        if total > MiB and total > ratio_limit * max(packed, 1):
            raise DocumentError(
                f"{name} expands {total / max(packed, 1):.0f}-fold (limit {ratio_limit:.0f}): "
                "refusing a possible zip bomb"
            )
        for info in infos:
            if not info.filename or info.filename.endswith("/"):  # folders (a damaged name may be empty)
                continue
            if info.file_size > MiB and info.file_size > ratio_limit * max(info.compress_size, 1):
                raise DocumentError(
                    f"{name}: {info.filename} expands {info.file_size / max(info.compress_size, 1):.0f}-fold "
                    f"(limit {ratio_limit:.0f}): refusing a possible zip bomb"
                )
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if not parts or ".." in parts or info.filename.startswith("/"):
                continue  # never used: members are read in memory by name, never extracted
            self._members["/".join(parts)] = info

    # -- access ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._members or self._files)

    def read(self, name: str) -> bytes:
        """Bytes of one file, within the per-file and per-export limits."""
        shown = f"{self.path.name}/{name}"
        if self._zip is not None:
            info = self._members[name]
            if info.file_size > self.limits.max_file_bytes:
                raise DocumentError(f"{shown} is {size_text(info.file_size)}, over the per-file limit")
            try:
                with self._zip.open(info) as handle:
                    data = handle.read(info.file_size + 1)
            except _ZIP_ERRORS as exc:
                raise DocumentError(one_line(f"{shown} cannot be unpacked ({exc}): export it again")) from None
            if len(data) > info.file_size:
                raise DocumentError(f"{shown} holds more data than its zip header says: refusing it")
        else:
            data = read_file(self._files[name], self.limits, shown)
        self._bytes_read += len(data)
        if self._bytes_read > self.limits.max_total_bytes:
            raise DocumentError(
                f"{self.path.name} holds more than {size_text(self.limits.max_total_bytes)} of chat data: "
                "export fewer channels or raise the limit"
            )
        return data

    def read_json(self, name: str) -> Any:
        return parse_json(self.read(name), f"{self.path.name}/{name}")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ExportTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
