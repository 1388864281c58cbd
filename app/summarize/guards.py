"""Degenerate-output guards: repetition loops are detected and stopped while decoding.

Two kinds of loop are common in small models: a line (a bullet point) written again, and a
short token span repeated back to back ("the the the", "- - - -"). The guard watches the
stream, holds back a line while it could still turn out to repeat an earlier one (so a
repeated bullet never reaches the screen), and reports when to stop.
"""

from __future__ import annotations

import re

MIN_WORDS_FOR_DUPLICATE = 4  # shorter lines ("Decisions:", "- yes") may legitimately recur
MAX_PERIOD = 64  # longest repeated token span looked for
COPIES = 3  # back-to-back copies of a span that make a loop
COPIES_SHORT = 8  # for spans of one or two tokens ("!!!!", "- - -")

_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def normalize_line(line: str) -> str:
    """A line compared for repetition: no bullet mark, lower case, single spaces."""
    return " ".join(_BULLET.sub("", line).lower().split())


def is_empty_summary(text: str) -> bool:
    """True when ``text`` holds fewer than two words: the result to retry."""
    return len(re.findall(r"\w{2,}", text)) < 2


class RepetitionGuard:
    """Feed decoded pieces with :meth:`push`; it returns the text safe to show and whether to stop.

    ``text`` is the clean result: everything shown plus what :meth:`finish` releases, without
    the repeated line or the extra copies of a repeated span.
    """

    def __init__(self) -> None:
        self.stopped_by: str | None = None
        self._token_ids: list[int] = []
        self._pieces: list[str] = []  # decoded text per token, to cut the extra copies
        self._seen_lines: list[str] = []
        self._done = ""  # complete lines released
        self._line = ""  # current, incomplete line (released or held)
        self._released_in_line = 0  # characters of ``_line`` already released

    @property
    def text(self) -> str:
        return self._done + self._line

    def push(self, token_id: int, piece: str) -> tuple[str, bool]:
        """Take one decoded token; return (text to show now, stop decoding)."""
        if self.stopped_by:
            return "", True
        self._token_ids.append(token_id)
        self._pieces.append(piece)
        if self._repeating_span():
            return "", True
        shown = []
        for index, part in enumerate(piece.split("\n")):
            if index > 0:
                complete = self._line
                if self._is_duplicate(complete):
                    self._line, self._released_in_line = "", 0
                    self.stopped_by = "repetition"
                    return "".join(shown), True
                if len(normalize_line(complete).split()) >= MIN_WORDS_FOR_DUPLICATE:
                    self._seen_lines.append(normalize_line(complete))
                shown.append(complete[self._released_in_line:] + "\n")
                self._done += complete + "\n"
                self._line, self._released_in_line = "", 0
            self._line += part
        if not self._could_repeat(self._line):
            shown.append(self._line[self._released_in_line:])
            self._released_in_line = len(self._line)
        return "".join(shown), False

    def finish(self) -> str:
        """End of decoding: release the held part of the last line unless it repeats a line."""
        if self._is_duplicate(self._line):
            self._line, self._released_in_line = "", 0
            self.stopped_by = self.stopped_by or "repetition"
            return ""
        rest = self._line[self._released_in_line:]
        self._released_in_line = len(self._line)
        return rest

    def _is_duplicate(self, line: str) -> bool:
        norm = normalize_line(line)
        return len(norm.split()) >= MIN_WORDS_FOR_DUPLICATE and norm in self._seen_lines

    def _could_repeat(self, partial: str) -> bool:
        norm = normalize_line(partial)
        return bool(norm) and any(seen.startswith(norm) for seen in self._seen_lines)

    def _repeating_span(self) -> bool:
        """Detect back-to-back copies of a token span; drop the extra copies from the text."""
        ids = self._token_ids
        for period in range(1, MAX_PERIOD + 1):
            copies = COPIES_SHORT if period <= 2 else COPIES
            if len(ids) < period * copies:
                continue
            tail = ids[-period:]
            if all(ids[-period * (k + 1):len(ids) - period * k] == tail for k in range(1, copies)):
                if not "".join(self._pieces[-period:]).strip():
                    continue  # runs of blank lines or spaces are harmless
                start = len(ids) - period * copies
                while start > 0 and ids[start - 1] == ids[start - 1 + period]:
                    start -= 1  # the loop began earlier, at another phase of the span
                keep = start + period
                clean = "".join(self._pieces[:keep])
                lines = clean.split("\n")
                self._done = "\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else "")
                self._line = lines[-1]
                self._released_in_line = len(self._line)
                self.stopped_by = "repetition"
                return True
        return False
