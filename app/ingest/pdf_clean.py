"""Pure clean-up of extracted PDF pages: column reading order, headers/footers, page numbers, garbled text."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from app.ingest.normalize import dehyphenate, normalize_chars, vocabulary_of

# Column detection works on pypdf's layout-mode character grid; wider or longer pages are left alone.
_MAX_GRID_WIDTH = 600
_MAX_GRID_LINES = 1000
_EDGE_LINES = 4  # header/footer candidates: this many non-blank lines at the top and the bottom
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
_LINE_NUMBER = re.compile(r"^(\d{1,2})(?:\s+(.*)|$)")  # a transcript's line number and the line's text
_PAGE_NUMBER = re.compile(
    r"^(?:page|p\.|seite|página|pagina|стр\.?|страница)?\s*[-–—(\[]?\s*#\s*[-–—)\]]?"
    r"(?:\s*(?:of|/|von|de|di|из)\s*#)?$",
    re.IGNORECASE,
)
_ROMAN = re.compile(r"^(?=[ivxlc])c{0,3}(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$", re.IGNORECASE)


def order_columns(lines: list[str], depth: int = 0) -> list[str]:
    """Put side-by-side columns of a layout-mode page one after the other (reading order).

    Finds a gutter (a character column where many lines start after a gap of two or more spaces
    and few lines run across), then reads each run of lines that split cleanly at it left part
    first, right part second; lines that run across the gutter (titles, full-width figures)
    stay where they are. Recurses into each side, so three columns work too.
    """
    if depth > 4 or len(lines) > _MAX_GRID_LINES:
        return lines
    gutter = find_gutter(lines)
    if gutter is None:
        return lines
    out: list[str] = []
    left: list[str] = []
    right: list[str] = []

    def flush() -> None:
        out.extend(order_columns(left, depth + 1))
        out.extend(order_columns(right, depth + 1))
        left.clear()
        right.clear()

    for line in lines:
        if not line[gutter - 2 : gutter].strip():
            left.append(line[:gutter].rstrip())
            right.append(line[gutter:])
        else:
            flush()
            out.append(line)
    flush()
    return out


def find_gutter(lines: list[str]) -> int | None:
    """Character index where a right-hand column starts, or None for a single-column block."""
    nonblank = [line for line in lines if line.strip()]
    if len(nonblank) < 6:
        return None
    width = max(len(line) for line in nonblank)
    if width < 40 or width > _MAX_GRID_WIDTH:
        return None
    best, best_score = None, 0
    for x in range(max(12, int(width * 0.15)), int(width * 0.85)):
        starts = crossing = dense_left = 0
        for line in nonblank:
            if len(line) <= x:
                continue
            gap = not line[x - 2 : x].strip()
            if gap and line[x] != " ":
                starts += 1
                if len(line[:x].strip()) >= 0.4 * x:
                    dense_left += 1
            elif not gap and line[x:].strip():
                crossing += 1
        if starts < max(4, 0.2 * len(nonblank)) or crossing > 0.5 * starts:
            continue
        if dense_left < 0.3 * starts:  # short cells on the left: a table, not text columns
            continue
        score = starts - crossing
        if score > best_score:
            best, best_score = x, score
    return best


def grid_to_lines(text: str) -> list[str]:
    """Layout-mode text (or plain text) into trimmed lines with single spaces and normalized characters."""
    return [_SPACES.sub(" ", normalize_chars(line)).strip() for line in text.split("\n")]


def _furniture_key(line: str) -> str:
    return _DIGITS.sub("#", _SPACES.sub(" ", line).strip().lower())


def _edge_indices(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:_EDGE_LINES] + filled[-_EDGE_LINES:]))


def is_page_number(line: str) -> bool:
    """``"12"``, ``"- 12 -"``, ``"Page 3 of 50"``, ``"iv"``: a line that is only a page number."""
    key = _furniture_key(line)
    return bool(_PAGE_NUMBER.match(key) or _ROMAN.match(key))


def furniture_indices(pages: list[list[str]]) -> list[set[int]]:
    """Indices of repeated headers/footers and bare page numbers among each page's top and bottom lines.

    A line near a page's top or bottom is furniture when, with digits ignored, it recurs near the
    top or bottom of at least 3 pages and 30 % of the pages with text, or when it is only a page number.
    """
    with_text = sum(1 for lines in pages if any(line.strip() for line in lines))
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_furniture_key(lines[i]) for i in _edge_indices(lines)})
    threshold = max(3, 0.3 * with_text)
    return [
        {
            i for i in _edge_indices(lines)
            if is_page_number(lines[i]) or counts[_furniture_key(lines[i])] >= threshold
        }
        for lines in pages
    ]


def strip_line_numbers(lines: list[str]) -> list[str]:
    """A page of a numbered transcript (court, deposition: "12 The above-entitled matter came on for oral")
    without its line numbers, its numbered lines run together so sentences are whole again; a numbered
    line with no text, or a line without a number (a header), is a paragraph break. Other pages come
    back as they are.

    Numbered: 10+ lines with text, 60 % of them opening with 1, 2, 3 ... (in order, 80 % of the steps +1)."""
    filled = [line for line in lines if line.strip()]
    numbered = [int(match.group(1)) for line in filled
                if (match := _LINE_NUMBER.match(line.strip()))]
    if len(filled) < 10 or len(numbered) < 0.6 * len(filled):
        return lines
    steps = sum(1 for a, b in zip(numbered, numbered[1:], strict=False) if b == a + 1)
    if steps < 0.8 * (len(numbered) - 1):
        return lines
    result: list[str] = []
    paragraph: list[str] = []
    for line in filled:
        match = _LINE_NUMBER.match(line.strip())
        if match and (match.group(2) or "").strip():
            paragraph.append(match.group(2).strip())
            continue
        if paragraph:
            result += [" ".join(paragraph), ""]
            paragraph = []
        if not match:  # a running header or footer line stays a line of its own
            result += [line.strip(), ""]
    if paragraph:
        result.append(" ".join(paragraph))
    return result


def join_page(lines: list[str]) -> str:
    """Trimmed lines into page text with at most one blank line in a row."""
    text = "\n".join(line.strip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def clean_pages(raw_pages: list[str | None]) -> tuple[list[str], list[list[str]]]:
    """Raw layout-mode page texts into clean page texts, and the lines removed from each page.

    Order: furniture is found on the raw grid (before columns are split, so a header that spans
    both columns is seen whole), then columns are put in reading order, whitespace is collapsed,
    a numbered transcript's line numbers go, and words hyphenated across lines are rejoined using the
    document's own vocabulary.
    ``None`` pages (unreadable, skipped) come back as empty strings.
    """
    grids = [(text or "").split("\n") for text in raw_pages]
    key_lines = [grid_to_lines(text or "") for text in raw_pages]
    ordered_pages: list[list[str]] = []
    removed_pages: list[list[str]] = []
    for grid, keys, drop in zip(grids, key_lines, furniture_indices(key_lines), strict=True):
        removed_pages.append([keys[i] for i in sorted(drop)])
        body = [line for i, line in enumerate(grid) if i not in drop]
        ordered_pages.append(strip_line_numbers(grid_to_lines("\n".join(order_columns(body)))))
    vocabulary = vocabulary_of("\n".join("\n".join(lines) for lines in ordered_pages))
    texts = [join_page(dehyphenate(lines, vocabulary)) for lines in ordered_pages]
    return texts, removed_pages


_MOJIBAKE_CATEGORIES = frozenset({"Co", "Cc", "Cs", "Cn"})  # private use, control, surrogate, unassigned


def garbled_share(text: str) -> float:
    """Share of letters that look like mojibake: U+FFFD, private-use, control or unassigned characters, or
    letters whose script differs from the previous letter's inside one word (Greek glued to kana
    is what fonts without a Unicode map produce)."""
    bad = total = 0
    for word in text.split():
        previous = None
        for char in word:
            if char == "\ufffd" or unicodedata.category(char) in _MOJIBAKE_CATEGORIES:
                bad += 1
                total += 1
                continue
            if not char.isalpha():
                continue
            total += 1
            script = _script_family(char)
            if previous is not None and script != previous:
                bad += 1
            previous = script
    return bad / total if total else 0.0


def mixed_script_words(text: str) -> tuple[int, int]:
    """(words whose letters come from more than one script or that hold an unassigned or private-use
    character, words with a non-ASCII letter): a line of
    mojibake between ASCII numbers and labels ("1.000 ༏ଠ PERSON2 1.000౻໦޹உ") has a low
    :func:`garbled_share` but most of its non-ASCII words mix scripts; Arabic, Japanese or accented
    Latin words do not."""
    mixed = foreign = 0
    for word in text.split():
        if not any(char.isalpha() and not char.isascii() for char in word):
            continue
        foreign += 1
        mixed += len({_script_family(char) for char in word if char.isalpha()}) > 1 \
            or any(unicodedata.category(char) in _MOJIBAKE_CATEGORIES for char in word)
    return mixed, foreign


def _script_family(char: str) -> str:
    if char.isascii():
        return "latin"
    try:
        name = unicodedata.name(char)
    except ValueError:
        return "unknown"
    first = name.split(" ", 1)[0]
    if first in {"CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH", "FULLWIDTH", "IDEOGRAPHIC", "HANGUL"}:
        return "cjk"
    if first in {"LATIN", "MODIFIER"}:
        return "latin"
    return first
