"""An outline of a long input: one entry per range of pages, paragraphs or chat days/weeks/months, each
with one line of the document's own text (a key passage, the summary's evidence, or the range's most
central sentence)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.ingest.source_map import SourceMap, SourceUnit
from app.summarize.evidence import EvidenceReport
from app.summarize.extractive import textrank_order
from app.summarize.sentences import split_sentences

MIN_CHARS = 12_000  # shorter inputs (about 3k tokens) are read at a glance: no outline
MIN_PAGES = 6
TARGET_ENTRIES = 8
MAX_ENTRIES = 12
LINE_CHARS = 200  # an entry's line is cut here (at a word)
MIN_LINE_WORDS = 6  # an entry's line skips headings and page numbers shorter than this
MAX_LINE_WORDS = 60  # and run-on PDF blocks longer than this
MAX_CANDIDATES = 200


@dataclass(frozen=True)
class OutlineEntry:
    """One range of the input: ``start``/``end`` index the model text; ``line`` is the source's own text
    at ``[line_start, line_end)`` (the evidence link), ``source`` says where it came from."""

    label: str  # "pp. 1-3", "2016-08-06", "week of 2016-08-01", "2016-08", "¶ 1-40"
    start: int
    end: int
    line: str
    line_start: int
    line_end: int
    line_label: str  # the unit of the line: "p. 2", "2016-08-06 13:23", "¶ 3"
    source: str  # "key passage" | "evidence" | "central" (TextRank within the range) | "lead"
    first: dict[str, Any]
    last: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "start": self.start, "end": self.end, "from": self.first, "to": self.last,
                "line": self.line, "evidence": {"start": self.line_start, "end": self.line_end,
                                                "label": self.line_label, "source": self.source}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutlineEntry:
        link = data["evidence"]
        return cls(str(data["label"]), int(data["start"]), int(data["end"]), str(data["line"]), int(link["start"]),
                   int(link["end"]), str(link["label"]), str(link["source"]), dict(data["from"]), dict(data["to"]))


def outline_for(source_map: SourceMap, report: EvidenceReport | None = None, key_passages: Sequence[Any] = (),
                language: str | None = None) -> list[OutlineEntry]:
    """The outline of a long input (empty for a short one); see the module docstring."""
    if not source_map.units or not _is_long(source_map):
        return []
    groups = _group(source_map.units)
    anchors = _anchors(report, key_passages)
    entries: list[OutlineEntry] = []
    for label, units in groups:
        start, end = units[0].start, units[-1].end
        line = _line_from(anchors, start, end, source_map) or _central(source_map, start, end, language)
        if line is None:
            continue
        line_start, line_end, source = line
        text = _cut(source_map.text[line_start:line_end])
        unit = source_map.unit_at(line_start)
        entries.append(OutlineEntry(label, start, end, text, line_start, line_end,
                                    unit.label() if unit else "", source, _place(units[0]), _place(units[-1])))
    return entries


def _is_long(source_map: SourceMap) -> bool:
    if source_map.kind == "page":
        return len(source_map.units) >= MIN_PAGES
    return len(source_map.text) >= MIN_CHARS


def _group(units: list[SourceUnit]) -> list[tuple[str, list[SourceUnit]]]:
    if units[0].kind == "message" and all(unit.time is not None for unit in units):
        return _group_by_time(units)
    size = max(1, math.ceil(len(units) / TARGET_ENTRIES))
    groups: list[tuple[str, list[SourceUnit]]] = []
    for at in range(0, len(units), size):
        chunk = units[at:at + size]
        groups.append((_range_label(chunk[0], chunk[-1]), chunk))
    return groups


def _group_by_time(units: list[SourceUnit]) -> list[tuple[str, list[SourceUnit]]]:
    """Per day, week or month: the finest of them that gives at most MAX_ENTRIES non-empty periods."""
    for period in (_day, _week, _month, _year):
        groups: dict[str, list[SourceUnit]] = {}
        for unit in units:
            groups.setdefault(period(unit.time), []).append(unit)  # type: ignore[arg-type]
        if len(groups) <= MAX_ENTRIES or period is _year:
            return list(groups.items())
    return []


def _day(time: datetime) -> str:
    return f"{time:%Y-%m-%d}"


def _week(time: datetime) -> str:
    monday = time.date().fromordinal(time.date().toordinal() - time.weekday())
    return f"week of {monday:%Y-%m-%d}"


def _month(time: datetime) -> str:
    return f"{time:%Y-%m}"


def _year(time: datetime) -> str:
    return f"{time:%Y}"


def _range_label(first: SourceUnit, last: SourceUnit) -> str:
    if first.page is not None and last.page is not None:
        return f"p. {first.page}" if first.page == last.page else f"pp. {first.page}-{last.page}"
    if first.number == last.number:
        return first.label()
    prefix = "msgs" if first.kind == "message" else "¶"
    return f"{prefix} {first.number}-{last.number}"


def _place(unit: SourceUnit) -> dict[str, Any]:
    data: dict[str, Any] = {"label": unit.label()}
    if unit.page is not None:
        data["page"] = unit.page
    if unit.time is not None:
        data["time"] = unit.time.isoformat()
    return data


def _anchors(report: EvidenceReport | None, key_passages: Sequence[Any]) -> list[tuple[float, int, int, str]]:
    """Candidate lines, best first: key passages (the model's choice), then the summary's evidence."""
    anchors = [(2.0 + float(getattr(p, "score", 0.0) or 0.0), int(p.start), int(p.end), "key passage")
               for p in key_passages]
    if report is not None:
        anchors += [(item.score, item.start, item.end, "evidence")
                    for sentence in report.sentences for item in sentence.evidence]
    return sorted(anchors, key=lambda anchor: -anchor[0])


def _line_from(anchors: list[tuple[float, int, int, str]], start: int, end: int,
               source_map: SourceMap) -> tuple[int, int, str] | None:
    for _, line_start, line_end, source in anchors:
        if start <= line_start < end and len(source_map.text[line_start:line_end].split()) >= MIN_LINE_WORDS:
            return line_start, min(line_end, end), source
    return None


def _central(source_map: SourceMap, start: int, end: int, language: str | None) -> tuple[int, int, str] | None:
    """The range's most central sentence (TextRank, :mod:`app.summarize.extractive`) among those of
    MIN_LINE_WORDS to MAX_LINE_WORDS words; else its first sentence."""
    spans = [(start + s, start + e) for s, e in split_sentences(source_map.text[start:end], language)]
    if not spans:
        return None
    candidates = [span for span in spans
                  if MIN_LINE_WORDS <= len(source_map.text[span[0]:span[1]].split()) <= MAX_LINE_WORDS]
    if len(candidates) > MAX_CANDIDATES:  # evenly spread: the graph grows with the square of its size
        step = len(candidates) / MAX_CANDIDATES
        candidates = [candidates[int(i * step)] for i in range(MAX_CANDIDATES)]
    if not candidates:
        return spans[0][0], spans[0][1], "lead"
    order = textrank_order([source_map.text[s:e] for s, e in candidates])
    best = candidates[order[0]]
    return best[0], best[1], "central"


def _cut(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= LINE_CHARS:
        return text
    return text[:LINE_CHARS].rsplit(" ", 1)[0] + " …"
