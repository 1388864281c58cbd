"""Extractive baselines cut to a word count: the first N words (lead) and TextRank (TF-IDF graph, PageRank)."""

from __future__ import annotations

from collections.abc import Sequence

from app.summarize.sentences import split_sentences

BASELINES = ("lead", "textrank")


def words_of(text: str) -> int:
    """Words as ROUGE counts them: whitespace-separated pieces with a letter or digit (a "-" bullet is none)."""
    return sum(1 for piece in text.split() if any(ch.isalnum() for ch in piece))


def cut_words(pieces: Sequence[str], words: int) -> list[str]:
    """The pieces in order until ``words`` words, the last one cut at a word (whitespace collapsed)."""
    kept: list[str] = []
    left = words
    for piece in pieces:
        tokens = piece.split()
        if left <= 0 or not tokens:
            continue
        taken, count = [], 0
        for token in tokens:
            if count == left:
                break
            taken.append(token)
            count += any(ch.isalnum() for ch in token)
        kept.append(" ".join(taken))
        left -= count
    return kept


def lead(text: str, words: int, language: str | None = None) -> str:
    """The document's first ``words`` words, one sentence a line (the last sentence cut)."""
    spans = split_sentences(text, language)
    return "\n".join(cut_words([text[s:e] for s, e in spans], words))


def textrank_order(sentences: Sequence[str]) -> list[int]:
    """Sentence indices by PageRank centrality on the TF-IDF cosine graph, most central first."""
    import networkx as nx
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    if len(sentences) < 2:
        return list(range(len(sentences)))
    try:
        vectors = TfidfVectorizer(stop_words="english").fit_transform(sentences)
    except ValueError:  # only stop words: no vocabulary
        return list(range(len(sentences)))
    similarity = cosine_similarity(vectors)
    similarity.setflags(write=True)
    similarity[range(len(sentences)), range(len(sentences))] = 0.0
    graph = nx.from_numpy_array(similarity)
    try:
        ranks = nx.pagerank(graph, max_iter=200)
    except nx.PowerIterationFailedConvergence:
        ranks = {i: graph.degree(i, weight="weight") for i in graph.nodes}
    return sorted(range(len(sentences)), key=lambda i: (-ranks.get(i, 0.0), i))


def textrank(text: str, words: int, language: str | None = None, min_words: int = 4) -> str:
    """The most central sentences (TextRank) up to ``words`` words, in document order, one a line.

    Sentences under ``min_words`` words (headings, "Okay.") are not candidates while longer ones are.
    """
    spans = split_sentences(text, language)
    sentences = [" ".join(text[s:e].split()) for s, e in spans]
    order = textrank_order(sentences)
    long_enough = [i for i in order if words_of(sentences[i]) >= min_words] or order
    chosen: list[int] = []
    total = 0
    for index in long_enough:
        if total >= words:
            break
        chosen.append(index)
        total += words_of(sentences[index])
    chosen.sort()
    return "\n".join(cut_words([sentences[i] for i in chosen], words))


def baseline(name: str, text: str, words: int, language: str | None = None) -> str:
    """``lead`` or ``textrank`` of ``text`` cut to ``words`` words."""
    if name == "lead":
        return lead(text, words, language)
    if name == "textrank":
        return textrank(text, words, language)
    raise ValueError(f"unknown extractive baseline {name!r}: use one of {', '.join(BASELINES)}")
