"""Slack exports: folder, channel folder, day file, zip; names resolved; threads; zip-bomb and link limits."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.errors import DocumentError
from app.ingest.chats import ChatLimits, detect_chat

from .conftest import assert_one_line_naming, authored

EXPORT = "slack-export-viewer_testarchive"


@pytest.fixture(scope="module")
def export_dir(shared_data) -> Path:
    return shared_data / "chats" / "slack" / EXPORT


def _zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zipped.write(file, prefix + file.relative_to(folder).as_posix())
    return archive


def test_export_folder(export_dir):
    document = detect_chat(export_dir)
    assert document.kind == "slack"
    assert document.metadata["channels"] == ["#enrique", "#traveling-sailor"]
    assert document.metadata["messages"] == 147 and document.metadata["system_messages"] == 11
    assert document.metadata["participants"][:3] == ["Hamza Faran", "Harry Potter", "bot"]
    assert {"Hermione Granger", "heroeshannibal"} <= set(document.metadata["participants"])
    first = authored(document)[0]
    assert first.text == ("@Harry Potter: Created an issue for a setup.py so that it can be installed "
                          "to a standard place")
    assert first.time == datetime.fromtimestamp(1452837352.000006, tz=UTC)
    assert first.title == "#enrique"
    assert document.units[0].author is None and document.units[0].text == "@Hamza Faran has joined the channel"
    texts = "\n".join(u.text for u in document.units)
    assert "<@U" not in texts and "&gt;" not in texts
    assert "Here's an example: https://github.com/hfaran/progressive/blob/master/setup.py" in texts
    for channel in ("#enrique", "#traveling-sailor"):  # each channel in time order
        times = [u.time for u in document.units if u.title == channel]
        assert times == sorted(times)


def test_channel_folder_and_day_file(export_dir):
    channel = detect_chat(export_dir / "enrique")
    assert channel.title == "#enrique" and channel.metadata["channels"] == ["#enrique"]
    assert channel.metadata["messages"] == 96
    day = detect_chat(export_dir / "enrique" / "2016-01-15.json")
    assert day.title == "#enrique 2016-01-15"
    assert day.metadata["participants"] == ["Harry Potter", "Hamza Faran"]  # users.json two folders up
    assert day.units[-1].text.startswith("Actually, you can just copy the setup.py from miguel")


def test_zip_with_a_top_folder_matches_the_folder(export_dir, tmp_path):
    archive = _zip_folder(export_dir, tmp_path / "Workspace Slack export.zip", prefix="export/")
    from_zip = detect_chat(archive)
    from_folder = detect_chat(export_dir)
    assert [u.to_json() for u in from_zip.units] == [u.to_json() for u in from_folder.units]
    assert from_zip.title == "Workspace Slack export (Slack, 2 channels)"


def test_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("users.json", "[]")
        zipped.writestr("general/2024-01-01.json", "[" + " " * (20 * 1024 * 1024) + "]")
    with pytest.raises(DocumentError, match="zip bomb") as caught:
        detect_chat(archive)
    assert_one_line_naming(caught.value, "bomb.zip")


def test_total_unpacked_size_limit(export_dir, tmp_path):
    archive = _zip_folder(export_dir, tmp_path / "export.zip")
    with pytest.raises(DocumentError, match="unpacks to .* over the .* limit") as caught:
        detect_chat(archive, limits=ChatLimits(max_total_bytes=50_000))
    assert_one_line_naming(caught.value, "export.zip")


def test_links_out_of_the_export_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "2024-01-01.json").write_text(json.dumps(
        [{"type": "message", "user": "U1", "text": "SECRET", "ts": "1704103200.000100"}]))
    export = tmp_path / "export"
    (export / "general").mkdir(parents=True)
    (export / "users.json").write_text(json.dumps([{"id": "U1", "real_name": "Ana"}]))
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (export / "general" / "2024-01-01.json").write_text(json.dumps(
        [{"type": "message", "user": "U1", "text": "hello <#C1|general> <!here>", "ts": "1704103200.000200"}]))
    os.symlink(outside / "secret", export / "secret")
    os.symlink(outside / "secret" / "2024-01-01.json", export / "general" / "2024-01-02.json")
    document = detect_chat(export)
    assert [u.text for u in document.units] == ["hello #general @here"]
    assert any("outside the export folder" in warning for warning in document.warnings)


def test_threads_follow_their_parent(tmp_path):
    export = tmp_path / "export"
    (export / "dev").mkdir(parents=True)
    (export / "users.json").write_text(json.dumps(
        [{"id": "U1", "name": "ana", "profile": {"real_name": "Ana Lima"}}, {"id": "U2", "name": "bo"}]))
    day = [
        {"type": "message", "user": "U1", "text": "Deploy today?", "ts": "100.1", "thread_ts": "100.1"},
        {"type": "message", "user": "U2", "text": "Lunch?", "ts": "200.1"},
        {"type": "message", "user": "U2", "text": "Yes, after <@U1> reviews", "ts": "300.1", "thread_ts": "100.1"},
        {"type": "message", "user": "U1", "text": "", "ts": "400.1", "files": [{"name": "a.png"}]},
    ]
    (export / "dev" / "2024-01-01.json").write_text(json.dumps(day))
    document = detect_chat(export)
    assert [(u.author, u.text) for u in document.units] == [
        ("Ana Lima", "Deploy today?"), ("bo", "↳ Yes, after @Ana Lima reviews"), ("bo", "Lunch?"), ("Ana Lima", "")]
    assert document.metadata["thread_replies"] == 1 and document.metadata["media_omitted"] == 1


def test_broken_day_file_names_the_export(tmp_path):
    export = tmp_path / "export"
    (export / "dev").mkdir(parents=True)
    (export / "users.json").write_text("[]")
    (export / "dev" / "2024-01-01.json").write_text('[{"type": "message", "ts": ')
    with pytest.raises(DocumentError) as caught:
        detect_chat(export)
    assert_one_line_naming(caught.value, "export/dev/2024-01-01.json")
