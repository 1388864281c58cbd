"""Every readable shared file: sentences copied from it are cited where they stand (or at an identical copy)."""

from __future__ import annotations

import re

import pytest

from app.errors import SepSumError
from app.ingest.detect import load_document
from app.ingest.source_map import SourceMap
from app.summarize.evidence import check, tokens
from app.summarize.sentences import split_sentences
from tests.conftest import SHARED_DATA

_HEADER = re.compile(r"^\[[^\]]*\] [^:\n]{1,40}: ")  # a transcript line's stamp and author


def _inputs() -> list[str]:
    names = []
    for path in sorted(SHARED_DATA.rglob("*")):
        relative = path.relative_to(SHARED_DATA).as_posix()
        if relative.startswith("summaries") or "/slack/" in relative:
            continue
        if path.is_file() or relative.endswith("testarchive"):
            names.append(relative)
    return names


def _plain(text: str) -> str:
    return " ".join(_HEADER.sub("", text).split())


@pytest.mark.slow
@pytest.mark.parametrize("name", _inputs())
def test_copied_sentences_are_cited_where_they_stand(shared_data, name):
    try:
        document = load_document(shared_data / name)
    except SepSumError:
        return  # broken, encrypted or scanned: the ingest tests cover those
    source_map = SourceMap.from_document(document)
    spans = [(s, e) for s, e in split_sentences(source_map.text)
             if len(_plain(source_map.text[s:e]).split()) >= 6 and e - s < 300]
    if not spans:
        return
    picked = sorted({spans[i * len(spans) // 3] for i in range(min(3, len(spans)))})
    summary = "\n".join("- " + _plain(source_map.text[s:e]) for s, e in picked)
    report = check(summary, source_map)
    assert len(report.sentences) >= len(picked)
    for start, end in picked:
        wanted = _plain(source_map.text[start:end])
        [item] = [item for item in report.sentences if wanted.startswith(_plain(item.text).removeprefix("- "))
                  or _plain(item.text).removeprefix("- ").startswith(wanted[:40])][:1]
        if not item.checked:
            continue  # under three content words: not judged
        cited = list(item.evidence)
        assert cited, (name, wanted)
        here = source_map.unit_at(start)
        # Cited where it stands, or at a sentence holding all its words (a repeated line, a table row).
        words = set(tokens(wanted))
        assert any(evidence.unit == here or words <= set(tokens(source_map.text[evidence.start:evidence.end]))
                   for evidence in cited), (name, wanted, [evidence.unit.label() for evidence in cited], here.label())
