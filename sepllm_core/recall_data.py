"""Recall-targeted training sequences: plain text with synthetic facts planted at random depths, asked at the end.

SepLLM self-distillation on plain text gives the student almost no reason to condense a segment
into its separator: few next-token predictions in a book depend on one specific fact far back.
These sequences add such predictions. Facts ("The key to the iron chest is painted crimson.")
are planted at random line ends of a plain-text window; after the text, questions about SOME of
them are followed by the answer restating the fact, and the answer's value tokens get a larger
loss weight. The teacher (full attention) copies the value from the fact; the student (SepLLM
mask, a local window shorter than the distance) can only match it through the separators.

Templates, subjects and values are disjoint from :mod:`sepllm_core.recall` (its code words,
cities, people, places, 4-digit numbers and its three sentence stems), so a recall evaluation
with that module measures generalization rather than memorized templates.

With ``open_values`` the facts come from :data:`OPEN_TEMPLATES`, whose values are made up per
fact (names built from syllables, 2-3 or 5-6 digit numbers, codes such as ``QX-47``) instead of
drawn from the closed lists, so the read path cannot specialize to a few hundred known values.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

OCCUPATIONS = (
    "baker", "blacksmith", "ferryman", "schoolmaster", "miller", "shepherd", "tailor", "cooper", "weaver",
    "chandler", "locksmith", "glassblower", "saddler", "bookbinder", "tanner", "potter", "cartwright",
    "beekeeper", "apothecary", "innkeeper", "gardener", "stonemason", "fisherman", "watchmaker",
)
CONTAINERS = (
    "iron chest", "cellar door", "garden shed", "copper box", "linen cupboard", "wine cabinet", "tool trunk",
    "attic hatch", "stable gate", "music case", "map drawer", "sea locker", "tin strongbox", "pantry",
)
CARGOES = (
    "tea", "silk", "timber", "salt", "wool", "coffee", "marble", "ivory combs", "cotton", "tobacco",
    "rum", "spices", "porcelain", "sugar", "copper wire", "linen", "olive oil", "coal",
)
SOCIETIES = (
    "Chess Club", "Rowing Club", "Botanical Society", "Debating Union", "Choral Society", "Weavers Guild",
    "Astronomy Circle", "Poetry League", "Cycling Club", "Sketching Society", "Bell Ringers", "Hunt Committee",
)
ITEMS = (
    "silver teapot", "oak table", "brass telescope", "walnut desk", "painted screen", "wool carpet",
    "pewter jug", "rocking chair", "mahogany clock", "china vase", "leather saddle", "writing box",
)
OBJECTS = (
    "spare key", "old ledger", "sealing wax", "ship's log", "pocket watch", "bundle of letters", "brass compass",
    "family bible", "box of candles", "bottle of ink", "deed to the farm", "pair of spectacles",
)
ARTIFACTS = (
    "carved mask", "blue carpet", "ivory chess set", "bronze bell", "painted fan", "jade bowl", "oil lamp",
    "woven basket", "lacquer tray", "glass bead necklace", "clay figure", "silk screen",
)
TRAINS = (
    "mail coach", "night train", "morning ferry", "market cart", "post boat", "river steamer", "goods train",
    "milk wagon", "pilot boat", "excursion train",
)

COLOURS = (
    "crimson", "amber", "violet", "teal", "scarlet", "ivory", "indigo", "olive", "maroon", "turquoise",
    "lavender", "mustard", "magenta", "beige", "charcoal", "lilac", "ochre", "emerald",
)
SHIP_NAMES = (
    "Albatross", "Seraphina", "Northwind", "Pelican", "Valiant", "Morning Star", "Endeavour", "Kestrel",
    "Dolphin", "Good Hope", "Resolute", "Osprey", "Mermaid", "Swiftsure", "Gannet", "Polaris", "Heron",
)
DOG_NAMES = (
    "Biscuit", "Rufus", "Pippin", "Bramble", "Nutmeg", "Barnaby", "Toffee", "Rascal", "Muffin", "Gulliver",
    "Crumpet", "Patch", "Duke", "Bella", "Scout", "Pickles", "Mabel", "Rover",
)
FRUITS = (
    "apricot", "plum", "fig", "mango", "quince", "cherry", "pear", "peach", "gooseberry", "melon", "lemon",
    "damson", "grape", "banana", "apple", "orange", "pomegranate", "raspberry",
)
COUNTRIES = (
    "Portugal", "Norway", "Egypt", "Peru", "Chile", "Iceland", "Morocco", "Finland", "Greece", "Brazil",
    "Japan", "Mexico", "Turkey", "Denmark", "Persia", "India", "Siam", "Hungary",
)
INSTRUMENTS = (
    "violin", "cello", "flute", "harp", "oboe", "trumpet", "banjo", "accordion", "clarinet", "bagpipes",
    "piano", "mandolin", "bassoon", "trombone", "drum", "fiddle",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)
CURRENCIES = ("crowns", "shillings", "guineas", "florins", "ducats", "marks", "francs", "pesos")
HOUR_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")

#: Syllables of made-up names ("Korvath", "Ellisande"): open values no closed list holds.
NAME_ONSETS = (
    "Kor", "El", "Vash", "Mir", "Tal", "Dren", "Ost", "Bel", "Quor", "Zan", "Fen", "Ul", "Sar", "Thal", "Gry",
    "Nim", "Ard", "Cas", "Jor", "Yl", "Per", "Hal", "Brin", "Ves", "Or", "Lun", "Tib", "Keth", "Mab", "Rhos",
)
NAME_MIDDLES = ("a", "e", "i", "o", "u", "an", "el", "is", "or", "ul", "en", "ar", "ith", "om", "ev")
NAME_ENDS = (
    "vath", "ande", "rin", "dor", "mira", "wyn", "thas", "quil", "bek", "sora", "lith", "mond", "vel", "drac",
    "nessa", "garth", "pell", "ric", "yne", "zor", "tessa", "brand", "loch", "mar", "vik", "dell", "rune", "ast",
)
#: Letters of code-like values ("QX-47"); no vowels, so a code never spells a word.
CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


@functools.cache
def _evaluation_words() -> frozenset[str]:
    """Lower-cased words of :mod:`sepllm_core.recall`'s values, which made-up names must avoid."""
    from sepllm_core import recall

    phrases = (*recall.CODE_WORDS, *recall.CITIES, *recall.PEOPLE, *recall.PLACES)
    return frozenset(word.strip(".").lower() for phrase in phrases for word in phrase.split())


def open_name(rng: random.Random) -> str:
    """A made-up capitalized name of 2-3 syllables, e.g. ``"Korvath"`` or ``"Elisande"``.

    Names that are words of the recall evaluation's values (``"Orrin"``) are drawn again.
    """
    avoid = _evaluation_words()
    while True:
        middle = rng.choice(NAME_MIDDLES) if rng.random() < 0.5 else ""
        name = rng.choice(NAME_ONSETS) + middle + rng.choice(NAME_ENDS)
        if name.lower() not in avoid:
            return name


def open_number(rng: random.Random) -> str:
    """A 2-3 or 5-6 digit number (never 4 digits: those are :mod:`sepllm_core.recall`'s room numbers)."""
    return str(rng.randint(10, 999) if rng.random() < 0.5 else rng.randint(10_000, 999_999))


def open_code(rng: random.Random) -> str:
    """A code-like string of two consonants and 2-3 digits, e.g. ``"QX-47"``."""
    return f"{rng.choice(CODE_LETTERS)}{rng.choice(CODE_LETTERS)}-{rng.randint(10, 999)}"


#: How each open value kind is made; ``FactTemplate.generator`` names one of them.
OPEN_GENERATORS = {
    "name": open_name,
    "number": open_number,
    "code": open_code,
    "amount": lambda rng: f"{open_number(rng)} {rng.choice(CURRENCIES)}",
}


@dataclass(frozen=True)
class FactTemplate:
    """One kind of fact: ``stem`` + `` value`` + ``.`` is the sentence; ``question`` asks for the value.

    With a ``generator`` (a key of :data:`OPEN_GENERATORS`) the values are made up per call
    instead of drawn from the kind's closed list.
    """

    kind: str
    stem: str  # "The key to the {subject} is painted"
    question: str  # "What colour is the key to the {subject}?"
    subjects: tuple[str, ...]
    generator: str = ""

    def values(self, rng: random.Random, count: int = 16) -> list[str]:
        """A shuffled pool of this kind's values (numbers are drawn fresh, never 4-digit).

        ``count`` sizes the pool of an open (generated) kind; closed kinds return their whole list.
        """
        if self.generator:
            make = OPEN_GENERATORS[self.generator]
            pool: list[str] = []
            while len(pool) < count:
                value = make(rng)
                if value not in pool:
                    pool.append(value)
            return pool
        if self.kind == "colour":
            pool = list(COLOURS)
        elif self.kind == "ship":
            pool = list(SHIP_NAMES)
        elif self.kind == "dog":
            pool = list(DOG_NAMES)
        elif self.kind == "fruit":
            pool = list(FRUITS)
        elif self.kind == "country":
            pool = list(COUNTRIES)
        elif self.kind == "instrument":
            pool = list(INSTRUMENTS)
        elif self.kind == "date":
            pool = [f"{_ordinal(rng.randint(1, 28))} of {month}" for month in MONTHS]
        elif self.kind == "amount":
            pool = [f"{n} {rng.choice(CURRENCIES)}" for n in rng.sample(range(11, 999), 16)]
        elif self.kind == "drawer":
            pool = [str(n) for n in rng.sample(range(2, 99), 16)]
        elif self.kind == "time":
            pool = [f"{word} o'clock" for word in HOUR_WORDS]
        else:
            raise ValueError(f"unknown fact kind {self.kind!r}")
        rng.shuffle(pool)
        return pool


TEMPLATES: tuple[FactTemplate, ...] = (
    FactTemplate("colour", "The key to the {subject} is painted", "What colour is the key to the {subject}?",
                 CONTAINERS),
    FactTemplate("ship", "The ship that carried the {subject} was called the",
                 "What was the ship that carried the {subject} called?", CARGOES),
    FactTemplate("dog", "The {subject}'s dog is named", "What is the name of the {subject}'s dog?", OCCUPATIONS),
    FactTemplate("date", "The meeting of the {subject} was held on the",
                 "On which day was the meeting of the {subject} held?", SOCIETIES),
    FactTemplate("amount", "The {subject} was sold for", "For how much was the {subject} sold?", ITEMS),
    FactTemplate("drawer", "The {subject} is kept in drawer number", "In which drawer is the {subject} kept?",
                 OBJECTS),
    FactTemplate("fruit", "The favourite fruit of the {subject} is the",
                 "Which fruit does the {subject} like best?", OCCUPATIONS),
    FactTemplate("country", "The {subject} was brought home from", "Where was the {subject} brought from?",
                 ARTIFACTS),
    FactTemplate("instrument", "In the evenings the {subject} plays the",
                 "Which instrument does the {subject} play?", OCCUPATIONS),
    FactTemplate("time", "The {subject} leaves the village at", "When does the {subject} leave the village?",
                 TRAINS),
)

#: Templates whose values are made up per fact (``open_values``): names, numbers and codes that no
#: closed list holds. Stems and questions are disjoint from :mod:`sepllm_core.recall`'s.
OPEN_TEMPLATES: tuple[FactTemplate, ...] = (
    FactTemplate("dog", "The {subject}'s dog is named", "What is the name of the {subject}'s dog?", OCCUPATIONS,
                 "name"),
    FactTemplate("ship", "The ship that carried the {subject} was called the",
                 "What was the ship that carried the {subject} called?", CARGOES, "name"),
    FactTemplate("origin", "The {subject} was brought home from a village called",
                 "From which village was the {subject} brought home?", ARTIFACTS, "name"),
    FactTemplate("founder", "The {subject} was founded by a woman named", "Who founded the {subject}?",
                 SOCIETIES, "name"),
    FactTemplate("drawer", "The {subject} is kept in drawer number", "In which drawer is the {subject} kept?",
                 OBJECTS, "number"),
    FactTemplate("amount", "The {subject} was sold for", "For how much was the {subject} sold?", ITEMS, "amount"),
    FactTemplate("house", "The {subject} lives at house number", "At which house number does the {subject} live?",
                 OCCUPATIONS, "number"),
    FactTemplate("label", "The label on the {subject} reads", "What does the label on the {subject} read?",
                 CONTAINERS, "code"),
    FactTemplate("ticket", "The seat on the {subject} is booked under ticket",
                 "Under which ticket is the seat on the {subject} booked?", TRAINS, "code"),
    FactTemplate("crate", "The crate of {subject} is stamped with the mark",
                 "Which mark is stamped on the crate of {subject}?", CARGOES, "code"),
    FactTemplate("horse", "The {subject}'s horse is called", "What is the {subject}'s horse called?", OCCUPATIONS,
                 "name"),
    FactTemplate("teacher", "The {subject} learned the trade from a man named",
                 "From whom did the {subject} learn the trade?", OCCUPATIONS, "name"),
    FactTemplate("steersman", "The boat that carried the {subject} was steered by a man named",
                 "Who steered the boat that carried the {subject}?", CARGOES, "name"),
    FactTemplate("locker", "The {subject} is stored in locker number", "In which locker is the {subject} stored?",
                 OBJECTS, "number"),
    FactTemplate("weight", "The load of {subject} weighed", "How much did the load of {subject} weigh?", CARGOES,
                 "number"),
    FactTemplate("serial", "The serial number on the {subject} is", "What is the serial number on the {subject}?",
                 ITEMS, "code"),
    FactTemplate("permit", "The {subject} holds a permit marked", "Which permit does the {subject} hold?",
                 OCCUPATIONS, "code"),
)

#: How a question and its answer are framed after the text; the answer restates the fact's stem.
QUESTION_FORMATS = (
    "\n\nQuestion: {question}\nAnswer: {stem}",
    "\n\nQ: {question}\nA: {stem}",
    "\n\n{question} {stem}",
    "\n\nA reader asks: {question} From the text above: {stem}",
)


@dataclass(frozen=True)
class PlantedFact:
    """One synthetic fact as planted and (maybe) asked."""

    kind: str
    sentence: str  # "The key to the iron chest is painted crimson."
    prompt: str  # the question block up to the value, e.g. "\n\nQ: ...?\nA: The key to the iron chest is painted"
    value: str  # "crimson" (tokenized with a leading space)


@dataclass(frozen=True)
class RecallDataConfig:
    """How recall sequences are built."""

    min_facts: int = 3
    max_facts: int = 8
    min_questions: int = 1
    max_questions: int = 4
    answer_weight: float = 20.0
    #: Every fact sentence ends at least this many tokens before the first question (0: anywhere).
    #: Set above the student's local window so no answer can see its fact except through separators.
    min_distance: int = 0
    #: All facts of a sequence are of one kind (distinct subjects and values), so an answer must pick
    #: its fact by subject, not by kind or position.
    same_kind: bool = False
    #: Facts from :data:`OPEN_TEMPLATES`, with values made up per fact instead of closed lists. A
    #: value's leading whitespace-only token (before digits) counts as prompt, not answer.
    open_values: bool = False
    #: With ``open_values``, the share of sequences that use them; the others use the closed lists.
    open_share: float = 1.0

    def validate(self) -> None:
        if not 0.0 <= self.open_share <= 1.0:
            raise ValueError(f"open_share must be in [0, 1], got {self.open_share}")
        if self.min_distance < 0:
            raise ValueError(f"min_distance must be >= 0, got {self.min_distance}")
        if not 1 <= self.min_facts <= self.max_facts:
            raise ValueError(f"need 1 <= min_facts <= max_facts (got {self.min_facts}, {self.max_facts})")
        if not 1 <= self.min_questions <= self.max_questions:
            raise ValueError(f"need 1 <= min_questions <= max_questions (got {self.min_questions}, "
                             f"{self.max_questions})")
        if self.answer_weight <= 0:
            raise ValueError(f"answer_weight must be positive, got {self.answer_weight}")


@dataclass(frozen=True)
class RecallSequence:
    """One training sequence with its per-token loss weights.

    Attributes
    ----------
    input_ids : LongTensor [L]
    weights : FloatTensor [L]
        Weight of the loss for *predicting* token ``i`` (from position ``i - 1``); ``answer_weight``
        on answer value tokens, 1 elsewhere.
    answer_mask : BoolTensor [L]
        True on answer value tokens.
    fact_starts : list of int
        Token index where each planted fact sentence starts (same order as ``facts``).
    asked : list of int
        Indices into ``facts`` of the facts asked at the end, in the order asked.
    fact_separators : list of int
        Token index of each fact sentence's last token before its line break (the ``.`` separator
        that should carry the fact), same order as ``facts``.
    """

    input_ids: torch.Tensor
    weights: torch.Tensor
    answer_mask: torch.Tensor
    facts: tuple[PlantedFact, ...]
    fact_starts: tuple[int, ...]
    asked: tuple[int, ...]
    fact_separators: tuple[int, ...] = ()

    def routes(self) -> torch.Tensor:
        """LongTensor [L]: at the first token of each answer value, its fact's separator index; -1 elsewhere."""
        routes = torch.full(self.answer_mask.shape, -1, dtype=torch.long)
        flags = self.answer_mask.tolist()
        firsts = [i for i, flag in enumerate(flags) if flag and (i == 0 or not flags[i - 1])]
        for first, fact_index in zip(firsts, self.asked, strict=True):
            routes[first] = self.fact_separators[fact_index]
        return routes


def make_training_facts(count: int, rng: random.Random, *, same_kind: bool = False,
                        open_values: bool = False) -> list[PlantedFact]:
    """``count`` facts with distinct (template, subject) pairs and distinct values per kind.

    With ``same_kind`` all facts come from one template (one drawn among those with enough subjects);
    with ``open_values`` from :data:`OPEN_TEMPLATES`, values made up per fact.
    """
    templates = OPEN_TEMPLATES if open_values else TEMPLATES
    if same_kind:
        roomy = [t for t in templates if len(t.subjects) >= count]
        if not roomy:
            raise ValueError(f"no fact kind has {count} subjects: use at most "
                             f"{max(len(t.subjects) for t in templates)} facts with same_kind")
        template = rng.choice(roomy)
        pairs = [(template, s) for s in template.subjects]
    else:
        pairs = [(t, s) for t in templates for s in t.subjects]
    chosen = rng.sample(pairs, k=count)
    pools: dict[str, list[str]] = {}
    facts = []
    for template, subject in chosen:
        pool = pools.setdefault(template.kind, template.values(rng, max(16, count)))
        value = pool.pop()
        stem = template.stem.format(subject=subject)
        question = template.question.format(subject=subject)
        frame = rng.choice(QUESTION_FORMATS)
        facts.append(PlantedFact(kind=template.kind, sentence=f"{stem} {value}.", value=value,
                                 prompt=frame.format(question=question, stem=stem)))
    return facts


_LINE_ENDS: dict[tuple[str, int], torch.Tensor] = {}


def _line_end_table(tokenizer: Any) -> torch.Tensor:
    """BoolTensor [vocab]: tokens whose text ends a line (where facts may be planted); cached per vocabulary."""
    key = (str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
    if key not in _LINE_ENDS:
        size = len(tokenizer)
        table = torch.zeros(size, dtype=torch.bool)
        for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(size)))):
            text = tokenizer.convert_tokens_to_string([piece]) if piece is not None else ""
            table[token_id] = text.endswith("\n")
        _LINE_ENDS[key] = table
    return _LINE_ENDS[key]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def build_recall_sequence(doc: torch.Tensor, tokenizer: Any, seq_len: int, rng: random.Random,
                          config: RecallDataConfig = RecallDataConfig()) -> RecallSequence:
    """Plant facts at random line ends of a random window of ``doc`` and ask some of them at the end.

    Parameters
    ----------
    doc : LongTensor [n]
        A plain-text token stream (longer than ``seq_len``).
    tokenizer
        The model's tokenizer.
    seq_len
        Length of the returned sequence (text + facts + questions and answers).
    rng
        Source of randomness (seed it for reproducible data).

    Returns
    -------
    RecallSequence
        ``input_ids`` is exactly ``seq_len`` long and ends with the last answer.
    """
    config.validate()
    if config.open_values and config.open_share < 1.0:
        config = replace(config, open_values=rng.random() < config.open_share)
    count = rng.randint(config.min_facts, config.max_facts)
    facts = make_training_facts(count, rng, same_kind=config.same_kind, open_values=config.open_values)
    asked = rng.sample(range(count), k=min(count, rng.randint(config.min_questions, config.max_questions)))
    fact_ids = [_ids(tokenizer, fact.sentence + "\n") for fact in facts]
    sentence_lengths = [min(len(_ids(tokenizer, fact.sentence)), len(ids)) for fact, ids in zip(facts, fact_ids,
                                                                                               strict=True)]
    qa_parts = []  # (prompt ids, value ids, closing ids) per asked fact
    for index in asked:
        fact = facts[index]
        prompt, value = _ids(tokenizer, fact.prompt), _ids(tokenizer, " " + fact.value)
        if config.open_values and len(value) > 1 and not tokenizer.decode(value[:1]).strip():
            # " 490" is " ", "4", "9", "0": the lone space needs no fact, so the answer starts at "4".
            prompt, value = prompt + value[:1], value[1:]
        qa_parts.append((prompt, value, _ids(tokenizer, ".")))
    tail = sum(len(p) + len(v) + len(c) for p, v, c in qa_parts)
    text_len = seq_len - tail - sum(len(ids) for ids in fact_ids)
    if text_len - config.min_distance < 4 * count:
        raise ValueError(f"seq_len {seq_len} is too short for {count} facts and {len(asked)} questions "
                         f"({seq_len - text_len} tokens) with min_distance {config.min_distance}: use a longer seq_len")
    if doc.numel() <= text_len:
        raise ValueError(f"the training text has {doc.numel()} tokens, need more than {text_len}")
    start = rng.randrange(0, doc.numel() - text_len)
    text = doc[start : start + text_len]
    ends = _line_end_table(tokenizer)
    inside = (text >= 0) & (text < ends.numel())
    after_line_end = (ends[text.clamp(0, ends.numel() - 1)] & inside).nonzero().flatten() + 1
    last_cut = text_len - max(config.min_distance, 1)  # text after the last fact >= min_distance tokens
    cut_points: list[int] = after_line_end[after_line_end <= last_cut].tolist()
    if len(cut_points) >= count:
        cuts = sorted(rng.sample(cut_points, k=count))
    else:  # text without (enough) line breaks: plant anywhere early enough
        cuts = sorted(rng.sample(range(1, last_cut + 1), k=count))
    ids: list[int] = []
    fact_starts = [0] * count
    order = list(range(count))
    rng.shuffle(order)  # which fact goes to which depth
    previous = 0
    for cut, fact_index in zip(cuts, order, strict=True):
        ids.extend(text[previous:cut].tolist())
        fact_starts[fact_index] = len(ids)
        ids.extend(fact_ids[fact_index])
        previous = cut
    ids.extend(text[previous:].tolist())
    answer = [False] * len(ids)
    for prompt, value, closing in qa_parts:
        ids.extend(prompt)
        answer.extend([False] * len(prompt))
        ids.extend(value)
        answer.extend([True] * len(value))
        ids.extend(closing)
        answer.extend([False] * len(closing))
    input_ids = torch.tensor(ids, dtype=torch.long)
    answer_mask = torch.tensor(answer, dtype=torch.bool)
    weights = torch.where(answer_mask, config.answer_weight, 1.0).to(torch.float32)
    separators = tuple(start + length - 1 for start, length in zip(fact_starts, sentence_lengths, strict=True))
    return RecallSequence(input_ids=input_ids, weights=weights, answer_mask=answer_mask, facts=tuple(facts),
                          fact_starts=tuple(fact_starts), asked=tuple(asked), fact_separators=separators)


def recall_rows(docs: Sequence[torch.Tensor], tokenizer: Any, batch_size: int, seq_len: int, seed: int, step: int,
                config: RecallDataConfig = RecallDataConfig()) -> list[RecallSequence]:
    """``batch_size`` recall sequences from ``docs`` (drawn by length); deterministic in (seed, step)."""
    rng = random.Random(seed * 1_000_003 + step * 7919 + 17)
    usable = [d for d in docs if d.numel() > seq_len]
    if not usable:
        longest = max((d.numel() for d in docs), default=0)
        raise ValueError(f"the training text is too short: {longest} tokens, need more than seq_len={seq_len}")
    return [build_recall_sequence(rng.choices(usable, weights=[d.numel() for d in usable])[0], tokenizer,
                                  seq_len, rng, config) for _ in range(batch_size)]


def recall_batch(docs: Sequence[torch.Tensor], tokenizer: Any, batch_size: int, seq_len: int, seed: int, step: int,
                 config: RecallDataConfig = RecallDataConfig()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch_size`` recall sequences from ``docs`` (drawn by length), stacked; deterministic in (seed, step).

    Returns
    -------
    (input_ids, weights, answer_mask) : LongTensor, FloatTensor, BoolTensor, each [batch_size, seq_len]
    """
    rows = recall_rows(docs, tokenizer, batch_size, seq_len, seed, step, config)
    return (torch.stack([r.input_ids for r in rows]), torch.stack([r.weights for r in rows]),
            torch.stack([r.answer_mask for r in rows]))
