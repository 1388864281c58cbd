"""Key passages chosen by the model's own reading: the attention the summary instruction pays to each sentence.

The document is read once (a full cache where it fits the trained context, else the SepLLM cache),
then the summary instruction is fed after it and :func:`sepllm_core.attention.attend_span`
measures how much of its attention lands on each cache entry. Each entry's mass goes to the
candidate unit (sentence, or transcript line) its token belongs to; in a SepLLM cache a kept
separator stands for the segment it closes, which is the unit its token ends. The best units
up to a word budget, without near-duplicates, in document order, are the passages: always the
document's own words, in its own language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.summarize.candidates import Units, reading_words, shown_ever, speaker_lines, tier, unit_of_tokens
from app.summarize.extractive import cut_words, words_of

WORDS = {"short": 30, "medium": 150, "long": 300}
"""Word budget of a passages summary per length setting (the model modes' token limits, in words)."""

MIN_CUT_WORDS = 3
_LEADING_MARKUP = re.compile(r"^\s*(?:[-*+\u2022]\s+|\d{1,3}[.)]\s+)*[*_]*")  # list marks, emphasis
_TRAILING_MARKUP = re.compile(r"(?<=\S)[*_]+$")  # the end of an emphasis


@dataclass(frozen=True)
class Passage:
    """One key passage: ``text`` is ``model_text[start:end]`` (whitespace collapsed, leading list marks and
    emphasis dropped, "…" where it was cut to the length asked for), ``score`` its rank mass."""

    start: int
    end: int
    text: str
    score: float
    page: int | None = None
    time: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text,
                                "score": round(self.score, 4)}
        if self.page is not None:
            data["page"] = self.page
        if self.time is not None:
            data["time"] = self.time
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        return cls(int(data["start"]), int(data["end"]), str(data["text"]), float(data.get("score", 0.0)),
                   data.get("page"), data.get("time"))


@dataclass(frozen=True)
class Rule:
    """How entry attention becomes a ranking (chosen on the TUNE half of the dev data: docs/benchmarks/
    summary_quality.md).

    layers : (first, last) decoder layers averaged, inclusive, clipped to the model's depth.
    norm : exponent of the unit's kept-entry count the summed mass is divided by (0: plain sum).
    units : "sentences", or "lines" for speaker-turn transcripts ("Name: ..." lines).
    redundancy : a unit whose TF-IDF cosine with a chosen one exceeds this is skipped.
    min_words : shorter units are not candidates while longer ones are left.
    skip_first : document tokens at the start whose mass is ignored (they act as attention sinks).
    debias : divide each token's mass by the mean mass of the tokens at a similar distance before the
        instruction (log2 bins): the instruction attends to what it just read, which pulls plain sums
        to the document's end (or, through a bounded cache, each probe's window end).
    """

    layers: tuple[int, int] = (5, 20)
    norm: float = 1.0
    units: str = "sentences"
    redundancy: float = 0.5
    min_words: int = 4
    skip_first: int = 0
    debias: bool = True


DEFAULT_RULE = Rule()
"""Chosen on the TUNE half of long_doc_dev (medium length): docs/benchmarks/summary_quality.md."""
SHORT_RULE = Rule(norm=0.0, units="sentences", min_words=4, debias=False)
"""Chosen on the TUNE half of dialogue_dev (250 rows, short length, all read with a full cache): plain sums
per sentence, no distance debiasing."""


def rule_for(length: str, bounded: bool = False, dialogue: bool = False) -> Rule:
    """The selection rule tuned for a summary: the short rule was tuned on dialogues that fit the context
    (a full cache); documents, and anything read through a bounded cache, keep the long documents' rule,
    whose debiasing undoes the instruction's pull to the end it just read (without it, make demo's short
    summary was the report's closing thanks)."""
    return SHORT_RULE if length == "short" and dialogue and not bounded else DEFAULT_RULE


@dataclass
class Measured:
    """One document's reading: token ends, where the document sits in the stream, the entry attention."""

    text: str
    token_ends: list[int]  # char offset where each document token ends
    doc_offset: int  # stream index of the document's first token
    positions: np.ndarray  # [n] stream index of each entry measured
    mass: np.ndarray  # [L, H, n] float32, per layer and query head
    layers: tuple[int, ...]
    cache_policy: str = "full"
    extra: dict[str, Any] = field(default_factory=dict)


def encode_with_ends(tokenizer: Any, text: str, piece_chars: int = 32768) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (no special tokens) and the char offset where each token ends.

    Tokenized in pieces cut after a line break, so a book does not build one huge encoding; the
    ids can differ from one call's only at those cuts.
    """
    ids: list[int] = []
    ends: list[int] = []
    start = 0
    while start < len(text):
        stop = len(text) if len(text) - start <= piece_chars else text.rfind("\n", start + 1, start + piece_chars)
        if stop <= start:
            stop = min(len(text), start + piece_chars)
        else:
            stop += 1 if stop < len(text) else 0
        encoded = tokenizer(text[start:stop], add_special_tokens=False, return_offsets_mapping=True)
        ids.extend(encoded["input_ids"])
        ends.extend(start + end for _, end in encoded["offset_mapping"])
        start = stop
    return ids, ends


def unit_scores(measured: Measured, spans: Sequence[tuple[int, int]], rule: Rule,
                token_units: np.ndarray | None = None) -> np.ndarray:
    """Attention mass per unit, ``[U]``, under ``rule`` (layers averaged, heads summed, length-normalised)."""
    first, last = rule.layers
    rows = [i for i, layer in enumerate(measured.layers) if first <= layer <= last] or list(range(len(measured.layers)))
    per_entry = measured.mass[rows].sum(axis=1).mean(axis=0)  # [n]
    doc_index = measured.positions - measured.doc_offset
    inside = (doc_index >= rule.skip_first) & (doc_index < len(measured.token_ends))
    if token_units is None:
        token_units = unit_of_tokens(spans, measured.token_ends)
    units = token_units[doc_index[inside]]
    valid = units >= 0
    weights = per_entry[inside][valid].astype(np.float64)
    if rule.debias and weights.size:
        weights = weights / _distance_prior(doc_index[inside][valid], weights, measured.extra.get("probe_step"))
    norm = rule.norm
    totals = np.bincount(units[valid], weights=weights, minlength=len(spans))
    counts = np.bincount(units[valid], minlength=len(spans)).astype(np.float64)
    scores = np.where(counts > 0, totals / np.maximum(counts, 1.0) ** norm, 0.0)
    return scores[: len(spans)]


def _distance_prior(index: np.ndarray, weights: np.ndarray, step: int | None) -> np.ndarray:
    """Mean mass of the tokens in the same log2 distance bin as each token (distance to the end of the
    reading the instruction followed: the document's end, or the end of the token's probe segment)."""
    if step:
        end = np.minimum((index // step + 1) * step, index.max() + 1)
    else:
        end = np.full_like(index, index.max() + 1)
    bins = np.floor(np.log2(end - index)).astype(np.int64)
    means = np.bincount(bins, weights=weights) / np.maximum(np.bincount(bins), 1)
    return np.maximum(means[bins], 1e-9)


def select(units: Units, scores: np.ndarray, words: int, rule: Rule = DEFAULT_RULE) -> list[int]:
    """Indices of the chosen units, best first, up to ``words`` words, skipping near-duplicates.

    Units are taken tier by tier: sentences of ``rule.min_words`` content words or more first, then
    shorter ones of 2+, then the rest (one-word lines, table rows, code, the works cited after a
    closing "References" heading): a document of tables still gets passages, a paper gets its prose.
    A bare link, a heading, a line without a word or mojibake (a font without a Unicode map on part of
    a page: "ಘΒΕͨ୯ޠ") is never chosen."""
    order = sorted((i for i in range(len(units.spans)) if shown_ever(units.texts[i])), key=lambda i: (-scores[i], i))
    order.sort(key=lambda i: tier(units, i, rule.min_words))  # stable: by score inside each tier
    vectors = units.vectors if rule.redundancy < 1.0 else None
    chosen: list[int] = []
    total = 0
    for index in order:
        if total >= words:
            break
        if scores[index] <= 0 and chosen:
            break
        if vectors is not None and chosen:
            similarity = (vectors[index] @ vectors[chosen].T).toarray().max()
            if similarity > rule.redundancy:
                continue
        chosen.append(index)
        total += reading_words(units.texts[index])
    return chosen


def passages_of(measured: Measured, words: int, rule: Rule = DEFAULT_RULE, language: str | None = None,
                source_map: Any = None, units: Units | None = None) -> list[Passage]:
    """The key passages of a read document, in document order, cut to ``words`` words in all.

    ``units``: the document's :class:`Units` for ``rule.units`` when already prepared (benchmarks
    scoring many rules)."""
    units = units or Units.of(measured.text, measured.token_ends, rule.units, language)
    spans = units.spans
    if not spans:
        return []
    scores = unit_scores(measured, spans, rule, units.token_units)
    chosen = select(units, scores, words, rule)
    texts = cut_words([units.texts[i] for i in chosen], words)  # the lowest-ranked passage is the one cut
    if len(texts) > 1 and words_of(texts[-1]) < MIN_CUT_WORDS:
        texts = texts[:-1]  # a stub of a sentence is no passage
    result = []
    for index, text in sorted(zip(chosen, texts, strict=False)):
        start, end = spans[index]
        cut = len(text.split()) < len(units.texts[index].split())
        text = _TRAILING_MARKUP.sub("", _LEADING_MARKUP.sub("", text, count=1)) or text  # as_summary adds the bullet
        if cut:
            text += " …"  # cut to the length asked for: the reader sees that the sentence goes on
        page, time = _location(source_map, start, end)
        result.append(Passage(start, end, text, float(scores[index]), page, time))
    return result


def _location(source_map: Any, start: int, end: int) -> tuple[int | None, str | None]:
    if source_map is None:
        return None, None
    try:
        unit = source_map.unit_at(start)
    except (AttributeError, IndexError, ValueError):
        return None, None
    if unit is None:
        return None, None
    time = getattr(unit, "time", None)
    return getattr(unit, "page", None), (f"{time:%Y-%m-%d %H:%M}" if time is not None else None)


def as_summary(passages: Sequence[Passage]) -> str:
    """The passages as the summary: one bullet each, in document order."""
    return "\n".join(f"- {p.text}" for p in passages)


def probe_every(config: Any, prompt_tokens: int) -> int | None:
    """Document tokens between two probes of a bounded cache: what its recent window surely still holds
    after a read, besides the protected instruction header and the probe's footer (``prompt_tokens``);
    None for a full cache, probed once at the end."""
    if not config.bounded:
        return None
    window = config.max_entries - config.initial - config.separators - prompt_tokens
    if not config.fill_recent:
        window = config.local
    return max(window, 16)


def measure(run: Any, session: Any, text: str, header: Sequence[int], document: Sequence[int],
            token_ends: Sequence[int], footer: Sequence[int]) -> Iterator[Any]:
    """Read ``header`` (protected) and ``document`` through ``session`` (a DocumentRun's, so progress,
    memory and cancel work as in any mode) and measure the ``footer``'s attention; returns
    :class:`Measured` (``yield from``).

    A full cache is probed once, after the whole document. A bounded cache is probed every
    :func:`probe_every` tokens, on a fork (so the instruction never enters the reading cache): each
    probe scores the tokens read since the previous one, all still held in the recent window, while
    the kept separators of everything earlier give the instruction its context. Every document token
    is thus scored once, by an instruction that has the document so far in view.
    """
    from sepllm_core.attention import attend_span

    footer = list(footer)
    yield from run.feed(session, list(header), protect=True)
    offset = len(header)
    step = probe_every(session.cache_config, len(header) + len(footer)) or max(len(document), 1)
    positions, masses, layers = [], [], ()
    for begin in range(0, len(document), step):
        yield from run.feed(session, document[begin:begin + step], document=True)
        last = begin + step >= len(document)
        cache = session.cache if last else session.cache.fork()
        measured, _ = attend_span(session.model, cache, footer, heads="none")
        fresh = (measured.positions >= offset + begin) & (measured.positions < offset + begin + step)
        if last and not session.cache_config.bounded:
            fresh = measured.positions >= offset
        positions.append(measured.positions[fresh].numpy())
        masses.append(measured.mass[..., fresh].numpy().astype(np.float32))
        layers = measured.layers
    return Measured(text=text, token_ends=list(token_ends), doc_offset=offset,
                    positions=np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64),
                    mass=np.concatenate(masses, axis=-1) if masses else np.zeros((0, 0, 0), dtype=np.float32),
                    layers=layers, cache_policy=session.cache_config.policy,
                    extra={"probe_step": step if session.cache_config.bounded else None})


def word_budget(length: str, token_limit: int | None = None) -> int:
    """Words of a passages summary: the length's budget, or about 0.6 words a token of an explicit limit."""
    if token_limit:
        return max(10, int(token_limit * 0.6))
    return WORDS.get(length, WORDS["medium"])


def reading_cache(run: Any, total_tokens: int, context_tokens: int) -> Any:
    """A full cache when the whole prompt fits the trained context and free memory, else the run's own
    (bounded) cache: beyond the context the SepLLM cache's kept separators stand for their segments."""
    from app.engine.estimate import free_bytes

    config = run.cache_config
    if not config.bounded or total_tokens > context_tokens:
        return config
    model_config = run.model.config.get_text_config()
    heads = model_config.num_attention_heads
    kv_heads = getattr(model_config, "num_key_value_heads", None) or heads
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // heads
    needed = 2 * model_config.num_hidden_layers * kv_heads * head_dim * 2 * total_tokens
    if needed * 2 > free_bytes(str(next(run.model.parameters()).device)):
        return config
    return config.full().with_(chunk_size=config.chunk_size, kv_quant=config.kv_quant)


def passages_mode(run: Any, ctx: Any, decoding: Any = None, rule: Rule | None = None) -> Iterator[Any]:
    """The ``passages`` mode: read the document, measure the instruction's attention, present the best
    passages as the summary (no decoding). Yields reading events and :class:`KeyPassages`; returns
    :class:`~app.summarize.runner.Generated` (``yield from``)."""
    from app.summarize.events import KeyPassages, Stage
    from app.summarize.runner import Generated

    text = ctx.text
    framing = ctx.summary_framing()
    header, footer = ctx.encode(framing.header), ctx.encode(framing.footer)
    document, ends = encode_with_ends(ctx.tokenizer, text)
    config = reading_cache(run, len(header) + len(document) + len(footer), ctx.context_tokens)
    session = run.session(config)
    measured = yield from measure(run, session, text, header, document, ends, footer)
    yield Stage("choosing passages", f"{len(measured.positions)} entries measured, {config.policy} cache")
    rule = rule or rule_for(ctx.length, config.bounded, speaker_lines(text))
    chosen = passages_of(measured, word_budget(ctx.length, ctx.token_limit), rule, ctx.document_language,
                         ctx.source_map)
    shown = chosen
    run.key_passages = shown
    yield KeyPassages(getattr(ctx, "path", ""), tuple(shown), measured)
    summary = as_summary(shown)
    run.streamed_text = summary
    return Generated(text=summary, tokens=0, stopped_by="passages")
