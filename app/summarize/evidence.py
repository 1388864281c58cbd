"""Evidence for every summary sentence: the source sentences that support it (BM25, bm25s) and its checked facts."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bm25s
import bm25s.stopwords as bm25_stopwords

from app.ingest.source_map import SourceMap, SourceUnit
from app.summarize.facts import Fact, SourceFacts, check_facts
from app.summarize.sentences import split_sentences

# bm25s sets its own logger to DEBUG, which prints "Building index" on every CLI run: keep it to warnings.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# A sentence is grounded when its best source sentence scores at least this (BM25 of the source sentence
# against the summary sentence, over BM25 of the summary sentence against itself). Chosen on the hand-
# checked pairs in tests/app/summarize/test_evidence.py: the supported pairs scored 0.32-0.80, the
# unsupported ones (invented content, another document's sentence) 0.06-0.14.
GROUNDED_SCORE = 0.25
MAX_EVIDENCE = 3  # source sentences kept per summary sentence
KEEP_RATIO = 0.6  # a further source sentence is kept when it scores this share of the best one
MIN_TERMS = 3  # a sentence with fewer content words ("IMAGE DATA") matches anything: not judged
_TOKEN = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_STOPWORDS: dict[str, frozenset[str]] = {language: frozenset(words) for language, words in {
    "en": bm25_stopwords.STOPWORDS_EN, "fr": bm25_stopwords.STOPWORDS_FRENCH,
    "de": bm25_stopwords.STOPWORDS_GERMAN, "es": bm25_stopwords.STOPWORDS_SPANISH,
    "it": bm25_stopwords.STOPWORDS_ITALIAN, "pt": bm25_stopwords.STOPWORDS_PORTUGUESE,
    "ru": bm25_stopwords.STOPWORDS_RUSSIAN, "nl": bm25_stopwords.STOPWORDS_DUTCH,
}.items()}
# Languages whose nouns are capitalised: a capital letter says nothing about a proper name there.
_NO_NAME_CHECK = {"de", "lb"}


@dataclass(frozen=True)
class Evidence:
    """One source sentence supporting a summary sentence: ``start``/``end`` index the model text."""

    unit: SourceUnit
    start: int
    end: int
    score: float

    def to_json(self) -> dict[str, Any]:
        data = self.unit.to_json()
        data.update(start=self.start, end=self.end, score=round(self.score, 3), label=self.unit.label())
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        """What :meth:`to_json` wrote (the unit keeps its label; its own span is the evidence's)."""
        return cls(SourceUnit.from_json(data), int(data["start"]), int(data["end"]), float(data.get("score", 0.0)))


@dataclass(frozen=True)
class SentenceEvidence:
    """One summary sentence (``start``/``end`` index the summary), its evidence and its checked facts."""

    text: str
    start: int
    end: int
    evidence: list[Evidence] = field(default_factory=list)  # only items scoring GROUNDED_SCORE or more
    facts: list[Fact] = field(default_factory=list)
    score: float = 0.0  # the best source sentence's score, grounded or not
    checked: bool = True  # False for a sentence under MIN_TERMS content words (a heading, an emoji)

    @property
    def grounded(self) -> bool:
        return self.score >= GROUNDED_SCORE

    @property
    def unsupported(self) -> list[str]:
        return [fact.text for fact in self.facts if not fact.supported]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "score": round(self.score, 3),
                "evidence": [item.to_json() for item in self.evidence], "unsupported": self.unsupported,
                "checked": self.checked}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SentenceEvidence:
        """What :meth:`to_json` wrote; the supported facts are not kept, the unsupported ones are."""
        return cls(str(data["text"]), int(data["start"]), int(data["end"]),
                   [Evidence.from_json(item) for item in data.get("evidence", ())],
                   [Fact("unsupported", str(text), False) for text in data.get("unsupported", ())],
                   float(data.get("score", 0.0)), bool(data.get("checked", True)))


@dataclass(frozen=True)
class EvidenceReport:
    """All sentences of a summary with the two shares the stats report."""

    sentences: list[SentenceEvidence]

    @property
    def grounded_share(self) -> float | None:
        return grounded_share(self.sentences)

    @property
    def numbers_supported(self) -> float | None:
        return numbers_supported(self.sentences)

    def stats(self) -> dict[str, Any]:
        numbers = [fact for item in self.sentences for fact in item.facts if fact.kind != "name"]
        return {"grounded_share": _round(self.grounded_share), "numbers_supported": _round(self.numbers_supported),
                "numbers_checked": len(numbers), "unsupported": sum(len(item.unsupported) for item in self.sentences)}


def align(summary: str, source_map: SourceMap, language: str | None = None,
          skip: int = 0, translated: bool = False) -> list[SentenceEvidence]:
    """Split ``summary`` into sentences; give each its best source sentences and its checked facts.
    The first ``skip`` characters (the fallback's notice line: the app speaking, not a claim) are left out.
    ``translated``: the summary is in another language than the source, so words cannot match: sentences
    are not judged (no evidence, not counted in grounded_share); numbers, dates and names still are."""
    spans = [span for span in split_sentences(summary, language, transcript=False) if span[0] >= skip]
    if not spans:
        return []
    source_spans = split_sentences(source_map.text, language)
    source_tokens = [tokens(source_map.text[start:end], language) for start, end in source_spans]
    queries = [tokens(summary[start:end], language) for start, end in spans]
    facts_source = SourceFacts(source_map.text, [unit.time for unit in source_map.units if unit.time], language)
    check_names = (language or "en") not in _NO_NAME_CHECK
    # The summary sentences join the index so each query can be scored against itself: that self-score
    # turns BM25 (unbounded, query-dependent) into a share comparable across sentences.
    retriever = bm25s.BM25()
    retriever.index([t or [""] for t in source_tokens + queries], show_progress=False)
    results: list[SentenceEvidence] = []
    for number, ((start, end), query) in enumerate(zip(spans, queries, strict=True)):
        text = summary[start:end]
        facts = check_facts(text, facts_source, check_names)
        if not query or translated:
            results.append(SentenceEvidence(text, start, end, [], facts, 0.0, checked=False))
            continue
        scores = retriever.get_scores(query)
        own = float(scores[len(source_tokens) + number])
        ranked = scores[:len(source_tokens)].argsort()[::-1][:MAX_EVIDENCE]
        shares = [min(1.0, float(scores[index]) / own) if own > 0 else 0.0 for index in ranked]
        best = shares[0] if shares else 0.0
        evidence: list[Evidence] = []
        for index, share in zip(ranked, shares, strict=True):
            if share < GROUNDED_SCORE or share < KEEP_RATIO * best:
                break
            source_start, source_end = source_spans[index]
            unit = source_map.unit_at(source_start)
            if unit is not None:
                evidence.append(Evidence(unit, source_start, source_end, share))
        judged = len(set(query)) >= MIN_TERMS
        results.append(SentenceEvidence(text, start, end, evidence if judged else [], facts, best, checked=judged))
    return results


def from_passages(summary: str, passages: Sequence[Any], source_map: SourceMap,
                  language: str | None = None) -> list[SentenceEvidence] | None:
    """Evidence of a summary made of key passages (:class:`app.summarize.passages.Passage`): each one's own
    span of the source, score 1, found where its text stands in ``summary``; None when one is not there
    (then :func:`align` searches). A passage has no sentence to search for: the model chose that span."""
    facts_source = SourceFacts(source_map.text, [unit.time for unit in source_map.units if unit.time], language)
    check_names = (language or "en") not in _NO_NAME_CHECK
    results: list[SentenceEvidence] = []
    cursor = 0
    for passage in passages:
        start = summary.find(passage.text, cursor)
        if start < 0:
            return None
        end = cursor = start + len(passage.text)
        units = [source_map.unit_at(passage.start), source_map.unit_at(max(passage.start, passage.end - 1))]
        evidence = [Evidence(unit, passage.start, passage.end, 1.0)
                    for number, unit in enumerate(units) if unit is not None and unit not in units[:number]]
        results.append(SentenceEvidence(passage.text, start, end, evidence,
                                        check_facts(passage.text, facts_source, check_names), 1.0))
    return results


def check(summary: str, source_map: SourceMap, language: str | None = None, skip: int = 0,
          translated: bool = False, passages: Sequence[Any] = ()) -> EvidenceReport:
    """:func:`align` wrapped with the shares for ``stats``; with the ``passages`` the summary shows,
    :func:`from_passages`."""
    exact = from_passages(summary, passages, source_map, language) if passages else None
    return EvidenceReport(exact if exact is not None else align(summary, source_map, language, skip, translated))


def grounded_share(sentences: list[SentenceEvidence], threshold: float = GROUNDED_SCORE) -> float | None:
    """Share of the summary's judged sentences whose best evidence scores ``threshold`` or more."""
    checked = [item for item in sentences if item.checked]
    if not checked:
        return None
    return sum(item.score >= threshold for item in checked) / len(checked)


def numbers_supported(sentences: list[SentenceEvidence]) -> float | None:
    """Share of the numbers, dates and times in the summary that the source holds (None: there are none)."""
    facts = [fact for item in sentences for fact in item.facts if fact.kind != "name"]
    if not facts:
        return None
    return sum(fact.supported for fact in facts) / len(facts)


def tokens(text: str, language: str | None = None) -> list[str]:
    """BM25 terms: casefolded words less stopwords; CJK runs as character bigrams (no spaces to split on)."""
    stop = _stopwords(language or "en")
    found: list[str] = []
    for word in _TOKEN.findall(text.casefold()):
        if _CJK.search(word):
            found.extend(_bigrams(word))
        elif word not in stop and (len(word) > 1 or word.isdigit()):
            found.append(word)
    return found


@functools.cache
def _stopwords(language: str) -> frozenset[str]:
    return _STOPWORDS["en"] | _STOPWORDS.get(language, frozenset())  # English words appear everywhere


def _bigrams(word: str) -> list[str]:
    if len(word) < 2:
        return [word]
    return [word[i:i + 2] for i in range(len(word) - 1)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
