"""Per-file limits that keep a hostile or huge input from hanging or exhausting the app."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one input may cost before loading stops with a clear message.

    max_file_bytes: larger files are refused before anything is read.
    max_pages: PDF pages beyond this are not read (a warning says so).
    seconds_per_file: wall-clock budget for one PDF; pages read by then are kept.
    seconds_per_page: a PDF page that takes longer is skipped with a warning.
    max_skipped_pages: after this many skipped (hung or crashed) pages the rest of the file is given up.
    max_chars_per_page: text beyond this on one page is cut (a warning says so).
    max_memory_bytes: address-space cap of the PDF worker process (where the OS allows one).
    isolate: read PDFs in a separate worker process that is killed on a timeout; ``False`` reads
        in-process (faster to start, but a page stuck inside pypdf cannot be interrupted).
    ocr: OCR scanned pages when an offline engine (rapidocr-onnxruntime) is installed.
    max_unpacked_bytes, max_zip_ratio, max_zip_members: zip-bomb limits for zipped chat exports.
    """

    max_file_bytes: int = 512 * MIB
    max_pages: int = 5000
    seconds_per_file: float = 300.0
    seconds_per_page: float = 30.0
    max_skipped_pages: int = 3
    max_chars_per_page: int = 200_000
    max_memory_bytes: int = 4096 * MIB
    isolate: bool = True
    ocr: bool = True
    max_unpacked_bytes: int = 1024 * MIB
    max_zip_ratio: float = 100.0
    max_zip_members: int = 100_000

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_pages", "max_chars_per_page", "max_memory_bytes",
                     "max_unpacked_bytes", "max_zip_members"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)}")
        for name in ("seconds_per_file", "seconds_per_page", "max_zip_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)}")
        if self.max_skipped_pages < 0:
            raise ValueError(f"Limits.max_skipped_pages must be >= 0, got {self.max_skipped_pages}")


def format_bytes(size: int) -> str:
    """``1536 -> '1.5 KiB'``: sizes in limit messages."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
