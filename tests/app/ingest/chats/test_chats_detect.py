"""detect_chat over every shared chat file, non-chat inputs, and malformed exports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.errors import DocumentError
from app.ingest.chats import detect_chat

from .conftest import assert_one_line_naming
from .test_chats_fuzz import shared_chat_files

KIND_BY_FOLDER = {"whatsapp": "whatsapp", "telegram": "telegram", "discord": "discord", "slack": "slack",
                  "messenger": "messenger", "instagram": "instagram", "signal": "signal"}
SLACK_LIST_FILES = {"users.json", "channels.json", "integration_logs.json"}


def test_every_shared_chat_file_is_recognized_quickly(chats_dir):
    files = shared_chat_files(chats_dir)
    assert len(files) >= 60
    for path in files:
        folder = path.relative_to(chats_dir).parts[0]
        started = time.perf_counter()
        document = detect_chat(path)
        elapsed = time.perf_counter() - started
        assert elapsed < 10, f"{path.name}: {elapsed:.1f} s"
        if path.name in SLACK_LIST_FILES:
            assert document is None, path  # workspace lists, not conversations
            continue
        assert document is not None, path
        assert document.kind == KIND_BY_FOLDER[folder], path
        if document.metadata["messages"] == 0:  # a Slack day with only joins
            assert document.metadata["system_messages"] > 0 and document.warnings, path
        else:
            assert document.metadata["participants"], path
        assert document.metadata["language"]
        json.dumps(document.to_json())  # JSON-serializable, as `sepsum extract --format json` needs


def test_non_chat_inputs_are_left_to_other_loaders(shared_data, tmp_path):
    assert detect_chat(shared_data / "pdfs" / "sf_multicolumn_2col.pdf") is None
    assert detect_chat(shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt") is None
    (tmp_path / "data.json").write_text(json.dumps({"name": "config", "values": [1, 2, 3]}))
    assert detect_chat(tmp_path / "data.json") is None
    assert detect_chat(tmp_path / "missing.txt") is None
    assert detect_chat(tmp_path) is None  # an ordinary folder


@pytest.mark.parametrize("content, expected", [
    (b'{"messages": [{"type": "message", "date": "2024-01-01T10:00:00", "from": "A", "text": "hi"}',
     "not valid JSON"),
    (b'{"guild": {}, "channel": {}, "messages": 5}', 'its "messages" is not a list'),
    (b'{"guild": {}, "channel": {}, "messages": [{"type": "Default", "timestamp": "yesterday"}]}', "malformed"),
    (b'[{"mapping": {}, "current_node": null}]', "holds a message"),
    (b'{"messages": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nests JSON too deeply"),
    (b"\xff\xfe" + '{"messages": []}'.encode("utf-16-le"), None),
])
def test_malformed_exports_give_one_line_errors(tmp_path, content, expected):
    path = tmp_path / "broken_export.json"
    path.write_bytes(content)
    try:
        result = detect_chat(path)
    except DocumentError as error:
        assert_one_line_naming(error, "broken_export.json")
        if expected is not None:
            assert expected in str(error)
    else:
        assert expected is None and result is None


def test_file_size_limit(tmp_path):
    from app.ingest.chats import ChatLimits

    path = tmp_path / "big_chat.txt"
    path.write_text("01/02/2024, 10:00 - Ana: hi\n" * 2000)
    with pytest.raises(DocumentError, match="big_chat.txt is .* over the .* limit"):
        detect_chat(path, limits=ChatLimits(max_file_bytes=10_000))


def test_limits_from_the_ingest_limits_object(tmp_path):
    class Limits:  # the attribute names of app.ingest.limits.Limits
        max_file_bytes = 10_000
        max_unpacked_bytes = 1
        max_zip_ratio = 100.0
        max_zip_members = 10

    path = tmp_path / "chat.txt"
    path.write_text("01/02/2024, 10:00 - Ana: hi\n" * 2000)
    with pytest.raises(DocumentError, match="limit"):
        detect_chat(Path(path), limits=Limits())
