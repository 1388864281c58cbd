"""Fuzzing real exports: mutated bytes and mutated JSON give a Document, None or DocumentError, quickly."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import DocumentError
from app.ingest.chats import detect_chat
from app.ingest.document import Document

REPO = Path(__file__).resolve().parents[4]
CHATS = REPO.parent / "shared" / "data" / "chats"
# Small real exports of every kind (the 1.4 MB Telegram file would slow each example down).
SEEDS = [
    "whatsapp/chatminer__test_mmddyyyy_12hrs.txt", "whatsapp/languages__english_ios.txt",
    "whatsapp/android__WhatsApp_Chat_with_Dmitry_S_EN+Media_Android.txt", "whatsapp/pokemon.txt",
    "telegram/tg-parser__personal_chat.json", "telegram/chatminer__test_batch_export.json",
    "discord/chat-analytics__GC_3A_5M.json", "messenger/chat-analytics__2A_7M.json",
    "instagram/chatminer__test_export.json", "signal/chatminer__test_export.txt",
    "slack/slack-export-viewer_testarchive/enrique/2016-01-15.json",
]
FUZZ_SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def shared_chat_files(chats_dir: Path) -> list[Path]:
    """Every chat file in the shared data (Slack per-day files included)."""
    return sorted(p for p in chats_dir.rglob("*") if p.is_file())


def _seed_bytes() -> list[tuple[str, bytes]]:
    if not CHATS.exists():
        return []
    return [(name, (CHATS / name).read_bytes()) for name in SEEDS]


def _slack_zip() -> bytes:
    """A small zipped Slack export (users, channels, one channel's days) built from the shared folder."""
    folder = CHATS / "slack" / "slack-export-viewer_testarchive"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name in ("users.json", "channels.json", "enrique/2016-01-14.json", "enrique/2016-01-15.json"):
            zipped.write(folder / name, name)
    return buffer.getvalue()


SEED_BYTES = _seed_bytes()
ZIP_BYTES = _slack_zip() if SEED_BYTES else b""


@pytest.fixture(autouse=True)
def _seeds_present(shared_data):
    """Without the shared exports: fail under CI=true, skip locally (the ``shared_data`` fixture decides)."""
    assert SEED_BYTES, f"{CHATS} holds none of the seed exports"


def _check(path: Path) -> None:
    started = time.perf_counter()
    try:
        result = detect_chat(path)
    except DocumentError as error:
        assert "\n" not in str(error) and path.name in str(error)
    else:
        assert result is None or isinstance(result, Document)
        if result is not None:
            json.dumps(result.to_json())
    assert time.perf_counter() - started < 5


@st.composite
def mutated_bytes(draw):
    name, data = draw(st.sampled_from(SEED_BYTES))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        operation = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif operation == "insert":
            data[position:position] = draw(st.sampled_from(
                [b"\x00", b"\n", b"[", b"{", b'"', b"\xe2\x80\x8e", b"\xef\xbb\xbf", b"99/99/9999, 99:99 - ",
                 b"[1/1/1, 1:1] x: ", b"\xff\xfe", b"}", b"]", b",", b"null", b"-1e999"]))
        elif operation == "truncate":
            data = data[:position]
        else:
            piece = data[position : position + draw(st.integers(1, 200))]
            data[position:position] = piece * draw(st.integers(1, 20))
    return name, bytes(data)


@FUZZ_SETTINGS
@given(sample=mutated_bytes())
def test_mutated_bytes(tmp_path_factory, sample):
    name, data = sample
    path = tmp_path_factory.mktemp("fuzz") / Path(name).name
    path.write_bytes(data)
    _check(path)


@FUZZ_SETTINGS
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_mutated_slack_zip(tmp_path_factory, flips, cut):
    data = bytearray(ZIP_BYTES)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path_factory.mktemp("fuzz") / "slack-export.zip"
    path.write_bytes(bytes(data))
    _check(path)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:5]):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_json(draw):
    names = [name for name, _ in SEED_BYTES if name.endswith(".json")]
    name = draw(st.sampled_from(names))
    data = json.loads((CHATS / name).read_bytes().decode("utf-8-sig"))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        target = draw(st.sampled_from(paths))
        parent = data
        for key in target[:-1]:
            parent = parent[key]
        parent[target[-1]] = draw(JSON_VALUES)
    return name, json.dumps(data, allow_nan=True)


@FUZZ_SETTINGS
@given(sample=mutated_json())
def test_mutated_json_structure(tmp_path_factory, sample):
    name, text = sample
    path = tmp_path_factory.mktemp("fuzz") / Path(name).name
    path.write_text(text, encoding="utf-8")
    _check(path)
