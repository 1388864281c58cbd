"""Planted-fact recall: plant short facts at known depths of a text, then score their answers at the end.

Next-token perplexity barely uses long context on small models; this measure asks whether the
*early* document is still in view after streaming it through a cache. Ten one-sentence facts
(code words, 4-digit numbers, cities) are planted at depths 5 % ... 95 % of a text. After the
document, each fact's question is scored from a fork of the cache state: the correct value's
summed log-probability is ranked against 9 distractors of the same kind (chance: top-1 10 %,
mean rank 5.5). The document is prefilled once; each question and candidate runs on a copy.

The cache is anything that follows the ``sepllm_core.cache`` contract (``push_tokens``,
``next_position_ids``, ``compress``, ``stats``); a plain transformers ``Cache`` without those
methods (``DynamicCache``) is treated as a full cache with absolute positions.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from sepllm_core.stream import forward_chunk, stream_chunks

#: Kinds of planted facts and their value pools (values must tokenize identically after a space).
CODE_WORDS = (
    "Marigold", "Juniper", "Falcon", "Obsidian", "Lantern", "Saffron", "Harbor", "Cobalt", "Thistle",
    "Meridian", "Quartz", "Willow", "Ember", "Glacier", "Orchid", "Pepper", "Sparrow", "Velvet",
)
CITIES = (
    "Lisbon", "Kyoto", "Oslo", "Cairo", "Lima", "Dublin", "Prague", "Madrid", "Vienna", "Nairobi",
    "Havana", "Warsaw", "Athens", "Berlin", "Toronto", "Sydney", "Seoul", "Bombay",
)
PEOPLE = (
    "Captain Orrin Vale", "Miss Delia Hart", "Doctor Amos Reed", "Mr. Silas Crane", "Mrs. Nora Pike",
    "Professor Ida Lowe", "Sergeant Abel Frost", "Widow Ruth Marsh", "Judge Elias Stone", "Mr. Jonah Wren",
    "Miss Clara Finch", "Deacon Levi Hale", "Mrs. Agnes Moss", "Colonel Hugh Dean", "Mr. Tobias Lark",
)
PLACES = (
    "north gate", "old lighthouse", "east warehouse", "chapel tower", "river lock", "signal station",
    "grain store", "harbour office", "powder room", "clock tower", "west bridge", "ferry landing",
)
DISTRACTORS = 9
#: Most facts per document: each needs its own subject (15 people for numbers and cities, 12 places).
MAX_FACTS = 23
FIRST_HALF = 0.5


@dataclass(frozen=True)
class Fact:
    """One planted fact: the sentence put into the text and the question asked after it."""

    kind: str  # "code word" | "number" | "city"
    sentence: str  # "The password for the north gate is Marigold."
    question: str  # "\n\nQuestion: ...?\nAnswer: The password for the north gate is"
    value: str  # "Marigold" (scored with a leading space)
    distractors: tuple[str, ...]
    depth: float  # where it was asked to go, 0..1 of the document


@dataclass(frozen=True)
class FactResult:
    """How one fact was answered: rank 1 means the correct value scored highest of 10."""

    depth: float
    kind: str
    value: str
    rank: int
    logprob: float
    best_distractor: str
    best_distractor_logprob: float
    position: int  # token index where the fact sentence starts in the document
    seed: int


@dataclass
class RecallReport:
    """Per-fact results and the summary shares; ``to_dict()`` is the CLI's JSON."""

    cache: str
    tokens: int
    facts: list[FactResult] = field(default_factory=list)
    kv_entries: int = 0
    kv_bytes_peak: int = 0
    kv_bytes_full_equivalent: int = 0
    seconds: float = 0.0

    def _part(self, early: bool) -> list[FactResult]:
        return [f for f in self.facts if (f.depth < FIRST_HALF) == early]

    @staticmethod
    def _share_first(facts: list[FactResult]) -> float | None:
        return sum(f.rank == 1 for f in facts) / len(facts) if facts else None

    @staticmethod
    def _mean_rank(facts: list[FactResult]) -> float | None:
        return sum(f.rank for f in facts) / len(facts) if facts else None

    @property
    def recall_early(self) -> float | None:
        """Share of facts planted in the first half of the document that rank first."""
        return self._share_first(self._part(early=True))

    @property
    def recall_late(self) -> float | None:
        return self._share_first(self._part(early=False))

    def to_dict(self) -> dict[str, Any]:
        early, late = self._part(early=True), self._part(early=False)
        return {
            "cache": self.cache,
            "tokens": self.tokens,
            "recall_early": self.recall_early,
            "recall_late": self.recall_late,
            "recall_early_count": f"{sum(f.rank == 1 for f in early)}/{len(early)}",
            "recall_late_count": f"{sum(f.rank == 1 for f in late)}/{len(late)}",
            "mean_rank_early": self._mean_rank(early),
            "mean_rank_late": self._mean_rank(late),
            "chance_recall": 1 / (DISTRACTORS + 1),
            "chance_mean_rank": (DISTRACTORS + 2) / 2,
            "kv_entries": self.kv_entries,
            "kv_bytes_peak": self.kv_bytes_peak,
            "kv_bytes_full_equivalent": self.kv_bytes_full_equivalent,
            "seconds": round(self.seconds, 2),
            "facts": [asdict(f) for f in self.facts],
        }


def make_facts(count: int = 10, seed: int = 0, *, open_values: bool = False) -> list[Fact]:
    """Return ``count`` facts with distinct subjects and values at depths evenly spread over 5 %..95 %.

    Kinds rotate (code word, number, city) in a seeded random order; each fact gets
    ``DISTRACTORS`` wrong values of its own kind that are not planted anywhere in the text.
    With ``open_values`` the values and distractors are made up per seed
    (:mod:`sepllm_core.recall_data`'s generators: codes such as ``"QX-47"``, 2-3 or 5-6 digit numbers,
    invented town names), so no answer can come from the model's priors; a number's or code's
    distractors have its digit count. Subjects, sentences and questions are the same as without.
    """
    if not 1 <= count <= MAX_FACTS:
        raise ValueError(f"need at least one fact and at most {MAX_FACTS}, got {count}")
    rng = random.Random(seed)
    depths = [0.05 + 0.9 * i / (count - 1) for i in range(count)] if count > 1 else [0.5]
    kinds = [("code word", "number", "city")[i % 3] for i in range(count)]
    rng.shuffle(kinds)
    people, places = rng.sample(PEOPLE, k=len(PEOPLE)), rng.sample(PLACES, k=len(PLACES))
    numbers = [str(n) for n in rng.sample(range(1000, 10000), k=count + 2 * DISTRACTORS + 2)]
    pools = {"code word": list(CODE_WORDS), "number": numbers, "city": list(CITIES)}
    if open_values:
        pools = _open_pools(random.Random(seed * 1_000_003 + 7), size=count + DISTRACTORS + 2)
        shaped = {kind: _by_shape(pool) for kind, pool in pools.items()}
    for pool in pools.values():
        rng.shuffle(pool)
    planted = {kind: [pools[kind].pop() for _ in range(kinds.count(kind))] for kind in pools}
    facts = []
    for depth, kind in zip(depths, kinds, strict=True):
        value = planted[kind].pop()
        candidates = pools[kind]
        if open_values:  # distractors of the value's shape: a 6-digit answer ranks against 6-digit numbers
            candidates = [v for v in shaped[kind].get(_shape(value), []) if v in pools[kind]]
        distractors = tuple(rng.sample(candidates, k=DISTRACTORS))
        if kind == "code word":
            place = places.pop()
            stem = f"The password for the {place} is"
            question = f"What is the password for the {place}?"
        elif kind == "number":
            person = people.pop()
            stem = f"The room number of {person} is"
            question = f"What is the room number of {person}?"
        else:
            person = people.pop()
            stem = f"{person} was born in the city of"
            question = f"In which city was {person} born?"
        facts.append(Fact(kind=kind, sentence=f"{stem} {value}.", value=value, distractors=distractors,
                          question=f"\n\nQuestion: {question}\nAnswer: {stem}", depth=depth))
    return facts


def _shape(value: str) -> int | None:
    """Digits in a made-up number or code (distractors share it); None for names."""
    digits = sum(c.isdigit() for c in value)
    return digits or None


def _by_shape(pool: Sequence[str]) -> dict[int | None, list[str]]:
    shapes: dict[int | None, list[str]] = {}
    for value in pool:
        shapes.setdefault(_shape(value), []).append(value)
    return shapes


def _open_pools(rng: random.Random, size: int) -> dict[str, list[str]]:
    """Distinct made-up values per kind: ``size`` names, none a prefix of another (ranking sums their
    tokens), and for numbers and codes at least ``size`` of every digit count the generator makes."""
    from sepllm_core.recall_data import open_code, open_name, open_number

    pools: dict[str, list[str]] = {}
    names: list[str] = []
    while len(names) < size:
        name = open_name(rng)
        if not any(name.startswith(v) or v.startswith(name) for v in names):
            names.append(name)
    pools["city"] = names
    for kind, make, shapes in (("code word", open_code, (2, 3)), ("number", open_number, (2, 3, 5, 6))):
        values: dict[str, None] = {}
        per_shape: dict[int | None, int] = dict.fromkeys(shapes, 0)
        while min(per_shape.values()) < size:
            value = make(rng)
            if value not in values:
                values[value] = None
                per_shape[_shape(value)] += 1
        pools[kind] = list(values)
    return pools


def skip_gutenberg_header(text: str) -> str:
    """Drop a Project Gutenberg header (everything up to the ``*** START OF`` line), if any."""
    marker = text.find("*** START OF")
    if marker < 0:
        return text
    line_end = text.find("\n", marker)
    return text[line_end + 1 :] if line_end >= 0 else ""


@dataclass(frozen=True)
class Segment:
    """A run of token ids fed as one unit; ``protected`` marks a fact sentence."""

    ids: list[int]
    protected: bool = False
    fact: int | None = None


def plant_facts(text_ids: Sequence[int], facts: Sequence[Fact], tokenizer: Any,
                line_ends: Callable[[int], bool]) -> list[Segment]:
    """Insert each fact sentence at its depth of ``text_ids``, snapped forward to the next line end.

    Returns the document as segments: text runs and one protected segment per fact (its sentence
    plus a line break), in document order.
    """
    cuts = []
    for depth in (f.depth for f in facts):
        cut = min(int(round(depth * len(text_ids))), len(text_ids))
        while cut < len(text_ids) and cut > 0 and not line_ends(text_ids[cut - 1]):
            cut += 1
        cuts.append(cut)
    segments: list[Segment] = []
    start = 0
    for index, (cut, fact) in enumerate(zip(cuts, facts, strict=True)):
        if cut > start:
            segments.append(Segment(list(text_ids[start:cut])))
        start = max(start, cut)
        sentence_ids = tokenizer(fact.sentence + "\n", add_special_tokens=False)["input_ids"]
        segments.append(Segment(list(sentence_ids), protected=True, fact=index))
    if start < len(text_ids):
        segments.append(Segment(list(text_ids[start:])))
    return segments


def _logprobs(model: Any, cache: Any, ids: Sequence[int], *, all_logits: bool = False) -> torch.Tensor:
    """Read ``ids`` through ``cache`` in one forward; fp32 log-probs ``[q or 1, vocab]``."""
    logits = forward_chunk(model, cache, list(ids), logits_to_keep=0 if all_logits else 1)
    return torch.log_softmax(logits, dim=-1)


def _fork(cache: Any, model: Any) -> Any:
    """Deep-copy a cache's state without copying the model it may reference."""
    memo: dict[int, Any] = {id(model): model}
    for module in model.modules():
        memo[id(module)] = module
    for tensor in (*model.parameters(), *model.buffers()):
        memo[id(tensor)] = tensor
    with torch.inference_mode():
        return copy.deepcopy(cache, memo)


def score_fact(model: Any, tokenizer: Any, cache: Any, fact: Fact) -> tuple[int, float, str, float]:
    """Rank the fact's value against its distractors from the state in ``cache`` (left unchanged).

    Returns (rank, correct logprob, best distractor, its logprob); ties count against the answer.
    """
    question_ids = tokenizer(fact.question, add_special_tokens=False)["input_ids"]
    asked = _fork(cache, model)
    if len(question_ids) > 1:
        forward_chunk(model, asked, question_ids[:-1])
    scores = {}
    for candidate in (fact.value, *fact.distractors):
        candidate_ids = tokenizer(" " + candidate, add_special_tokens=False)["input_ids"]
        logprobs = _logprobs(model, _fork(asked, model), [question_ids[-1], *candidate_ids], all_logits=True)
        targets = torch.tensor(candidate_ids, device=logprobs.device)
        scores[candidate] = float(logprobs[: len(candidate_ids)].gather(1, targets[:, None]).sum())
    correct = scores.pop(fact.value)
    best = max(scores, key=scores.__getitem__)
    rank = 1 + sum(score >= correct for score in scores.values())
    return rank, correct, best, scores[best]


def _line_end_table(tokenizer: Any) -> Callable[[int], bool]:
    cache: dict[int, bool] = {}

    def ends_line(token_id: int) -> bool:
        if token_id not in cache:
            cache[token_id] = tokenizer.decode([token_id]).endswith("\n")
        return cache[token_id]

    return ends_line


def document_ids(text: str, tokenizer: Any, tokens: int) -> Sequence[int]:
    """The first ``tokens`` token ids of ``text`` after its Gutenberg header (fewer if it is short).

    Tokenized as the app tokenizes a document (:func:`sepllm_core.encoding.encode_long`: one
    call's ids in bounded memory), as ``array("q")``.
    """
    from sepllm_core.encoding import encode_long

    body = skip_gutenberg_header(text)
    # ~4 characters per token in English prose; read a margin more so we rarely tokenize twice.
    ids = encode_long(tokenizer, body[: tokens * 6 + 1000])
    if len(ids) < tokens and len(body) > tokens * 6 + 1000:
        ids = encode_long(tokenizer, body)
    return ids[:tokens]


def measure_recall(model: Any, tokenizer: Any, text: str, *, tokens: int,
                   cache_factory: Callable[[], Any] | None, cache_name: str = "",
                   facts: int = 10, seeds: Sequence[int] = (0,), chunk_size: int = 256,
                   protect_facts: bool = False, open_values: bool = False) -> RecallReport:
    """Plant ``facts`` facts in the first ``tokens`` tokens of ``text`` and score them at the end.

    Parameters
    ----------
    model, tokenizer
        A Hugging Face causal LM and its tokenizer.
    text
        The document (a Gutenberg header is skipped).
    tokens
        Document length in tokens, planted fact sentences included.
    cache_factory
        Builds a fresh cache for each seed; ``None`` means "no document": the questions are asked
        on an empty cache (the no-context baseline).
    facts, seeds
        Facts per document and the seeds (one document pass per seed; results are pooled).
    chunk_size
        Prefill chunk length in tokens; fact sentences are always their own chunks.
    protect_facts
        Push fact sentences with ``protected=True`` (the "control" policy, when the cache keeps
        protected tokens).
    open_values
        Made-up values instead of the closed lists (:func:`make_facts`).
    """
    start = time.perf_counter()
    ends_line = _line_end_table(tokenizer)
    report = RecallReport(cache=cache_name, tokens=tokens)
    for seed in seeds:
        planted = make_facts(facts, seed, open_values=open_values)
        fact_tokens = sum(len(tokenizer(f.sentence + "\n", add_special_tokens=False)["input_ids"])
                          for f in planted)
        text_ids = document_ids(text, tokenizer, max(tokens - fact_tokens, 0))
        segments = plant_facts(text_ids, planted, tokenizer, ends_line)
        positions, offset = {}, 0
        for segment in segments:
            if segment.fact is not None:
                positions[segment.fact] = offset
            offset += len(segment.ids)
        report.tokens = offset
        if cache_factory is None:
            cache = _empty_cache(model)
        else:
            cache = cache_factory()
            for segment in segments:
                for _ in stream_chunks(model, cache, segment.ids, chunk_size,
                                       protected=protect_facts and segment.protected):
                    pass
        _record_stats(report, cache)
        for index, fact in enumerate(planted):
            rank, logprob, best, best_logprob = score_fact(model, tokenizer, cache, fact)
            report.facts.append(FactResult(
                depth=round(fact.depth, 4), kind=fact.kind, value=fact.value, rank=rank,
                logprob=round(logprob, 4), best_distractor=best,
                best_distractor_logprob=round(best_logprob, 4),
                position=positions[index] if cache_factory is not None else -1, seed=seed))
    report.seconds = time.perf_counter() - start
    return report


def _empty_cache(model: Any) -> Any:
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def _record_stats(report: RecallReport, cache: Any) -> None:
    if hasattr(cache, "stats"):
        stats = cache.stats()
        report.kv_entries = max(report.kv_entries, int(stats.kv_entries))
        report.kv_bytes_peak = max(report.kv_bytes_peak, int(getattr(stats, "kv_bytes_peak", stats.kv_bytes)))
        report.kv_bytes_full_equivalent = max(report.kv_bytes_full_equivalent,
                                              int(stats.kv_bytes_full_equivalent))
        return
    layers = getattr(cache, "layers", [])
    held = sum(t.numel() * t.element_size() for layer in layers
               for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
               if isinstance(t, torch.Tensor))
    entries = cache.get_seq_length() if layers else 0
    report.kv_entries = max(report.kv_entries, entries)
    report.kv_bytes_peak = max(report.kv_bytes_peak, held)
    report.kv_bytes_full_equivalent = max(report.kv_bytes_full_equivalent, held)


RECALL_CACHES = ("sepllm", "window", "full", "control", "none")


def cache_config_for(policy: str, budget: int = 1024, *, initial: int = 4, separators: int | None = None,
                     local: int | None = None, chunk_size: int = 256, positions: str = "auto",
                     fill_recent: bool = True) -> Any:
    """The ``CacheConfig`` used for ``policy`` at a total ``budget`` of entries (None for ``none``).

    ``sepllm`` splits the budget as initial + separators (default a quarter) + newest tokens;
    ``window`` and ``control`` keep initial + newest tokens (``control`` also protects the fact
    sentences); ``full`` keeps everything. ``fill_recent=False`` (``sepllm`` only): keep exactly
    ``local`` newest tokens instead of filling the budget with them (``CacheConfig.fill_recent``).
    """
    from sepllm_core.config import CacheConfig

    if policy not in RECALL_CACHES:
        raise ValueError(f"cache {policy!r} is unknown: use one of {', '.join(RECALL_CACHES)}")
    if policy == "none":
        return None
    if policy == "full":
        return CacheConfig.full().with_(chunk_size=chunk_size)
    if policy == "sepllm":
        kept_separators = budget // 4 if separators is None else separators
        window = budget // 4 if local is None else local
        return CacheConfig(policy="sepllm", initial=initial, separators=kept_separators, local=window,
                           max_entries=budget, chunk_size=chunk_size, positions=positions, fill_recent=fill_recent)
    window = budget - initial if local is None else local
    return CacheConfig(policy="window", initial=initial, separators=0, local=window, max_entries=budget,
                       chunk_size=chunk_size, positions=positions)


def cache_factory_for(model: Any, tokenizer: Any, config: Any,
                      separators: torch.Tensor | None = None) -> Callable[[], Any] | None:
    """A function building a fresh ``sepllm_core`` cache for ``config`` (None: no document).

    ``separators``: the separator table (default: ``separator_table(tokenizer)``'s default set)."""
    if config is None:
        return None
    from sepllm_core.cache import build_cache
    from sepllm_core.positions import find_rotary_module
    from sepllm_core.separators import separator_table

    table = separator_table(tokenizer) if separators is None else separators
    rotary = find_rotary_module(model)
    return lambda: build_cache(model.config, config, table, rotary=rotary)
