"""Fuzzing: real PDFs with corrupted, cut and shuffled bytes give a Document or a documented error, never a hang."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import DocumentError
from app.ingest.detect import UNEXPECTED, load_document
from app.ingest.document import Document
from app.ingest.limits import Limits

SEEDS = [
    "pm_zen_of_python_CORRUPTED.pdf",
    "pm_jo_japanese.pdf",
    "pm_aes-256_ENCRYPTED_user-foo_owner-baz.pdf",
    "sf_habibi_arabic.pdf",
    "pm_dmca_uscopyrightoffice.pdf",
    "sf_multicolumn_2col.pdf",
]
# Mutations aim at the structure pypdf parses: lengths, object headers, xref tables, stream bounds.
_HOT_SPOTS = re.compile(rb"/Length|\d+ \d+ obj|xref|startxref|stream|endobj|/Filter|/Pages|/Encrypt|trailer")
LIMITS = Limits(seconds_per_page=3.0, seconds_per_file=8.0)


@pytest.fixture(scope="module")
def seeds(shared_data):
    return [(shared_data / "pdfs" / name).read_bytes() for name in SEEDS]


mutation = st.tuples(
    st.sampled_from(["overwrite", "truncate", "delete", "duplicate", "number"]),
    st.floats(0, 1, exclude_max=True),  # where, as a share of the file (or of its hot spots)
    st.binary(min_size=1, max_size=16),
    st.integers(1, 4096),
)


def mutate(data: bytes, op: str, where: float, junk: bytes, size: int) -> bytes:
    spots = [m.start() for m in _HOT_SPOTS.finditer(data)]
    at = spots[int(where * len(spots))] if spots and op != "truncate" else int(where * len(data))
    if op == "overwrite":
        return data[:at] + junk + data[at + len(junk):]
    if op == "truncate":
        return data[:at]
    if op == "delete":
        return data[:at] + data[at + size:]
    if op == "duplicate":
        return data[:at] + data[at : at + size] * 3 + data[at:]
    number = re.compile(rb"\d+").search(data, at)  # a length, offset or object number gone wild
    if not number:
        return data
    huge = str(int.from_bytes(junk, "big") * 10**9 - 1).encode()
    return data[: number.start()] + huge + data[number.end():]


@settings(max_examples=30, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, len(SEEDS) - 1), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_pdfs_raise_only_documented_errors(seeds, tmp_path, seed, mutations):
    data = seeds[seed]
    for op, where, junk, size in mutations:
        data = mutate(data, op, where, junk, size)
    path = tmp_path / "fuzzed.pdf"
    path.write_bytes(data)
    started = time.monotonic()
    try:
        result = load_document(path, limits=LIMITS)
    except DocumentError as exc:  # PasswordRequired is a DocumentError too
        message = str(exc)
        assert message.startswith("fuzzed.pdf") and "\n" not in message
        assert UNEXPECTED not in message, message
    else:
        assert isinstance(result, Document) and result.kind == "pdf"
        assert result.text_for_model().strip()
        assert all("\n" not in warning for warning in result.warnings)
    elapsed = time.monotonic() - started
    assert elapsed < LIMITS.seconds_per_file + 5, f"no hang: took {elapsed:.1f} s"


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=2048))
def test_random_bytes_never_crash_the_text_path(tmp_path, data):
    path = tmp_path / "blob.txt"
    path.write_bytes(data.replace(b"%PDF", b"%PDX"))
    try:
        doc = load_document(path, limits=LIMITS)
    except DocumentError as exc:
        assert "\n" not in str(exc) and UNEXPECTED not in str(exc)
    else:
        assert doc.text_for_model().strip()
