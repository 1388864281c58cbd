"""Fixtures for the chat-export tests: the shared chat files, read in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ingest.document import Document, Unit


@pytest.fixture(scope="session")
def chats_dir(shared_data) -> Path:
    """``../shared/data/chats``: real WhatsApp, Telegram, Discord, Slack, Messenger... exports."""
    return shared_data / "chats"


def authored(document: Document) -> list[Unit]:
    """The messages that have an author (not system lines)."""
    return [unit for unit in document.units if unit.author is not None]


def assert_one_line_naming(error: Exception, name: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert name in message, message
