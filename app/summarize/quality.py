"""Checks a finished summary for garbage: echoed instructions, source copies, raw chat lines, URLs,
a wrong language, too few words, repetition.

The pipeline runs :func:`check_summary` on the model's text before it is shown as final; any
:class:`Flag` leads to one retry with another strategy, then to the key passages (never the garbage).
Each detector is tuned so that a faithful summary passes: a short quoted phrase of the source, a
name or a date taken from a chat, a line that repeats a heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.ingest.language import LATIN_LANGUAGES, guess_language
from app.summarize.guards import normalize_line

KINDS = ("prompt_echo", "source_copy", "raw_header", "url", "wrong_language", "too_short", "repetition")

ECHO_WORDS = 6  # a run of this many words shared with the prompt and absent from the source is an echo
COPY_WORDS = 8  # the unit of a verbatim copy (shorter shared runs are quotes of names and phrases)
COPY_RUN_MAX = 40  # one copied run this long is a copy, not a quote
COPY_SHARE_MAX = 0.6  # ... and so is a summary whose words lie mostly in copied runs
MIN_WORDS = 8  # a summary shorter than this says nothing (human summaries of dialogues go down to 8)
MIN_WORDS_SOURCE_SHARE = 25  # ... and a tiny source needs fewer: one word per 25 of the source, at least 3
LANGUAGE_MIN_WORDS = 12  # below this, a language guess is too unsure to act on
DISTINCT_TRIGRAMS_MIN = 0.5  # share of distinct word trigrams under which a text is looping

# A word; Chinese and Japanese are written without spaces, so each of their characters counts as one.
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]+")
_LETTER = re.compile(r"[^\W\d_]")
# Pieces of the app's own prompts that a small model continues with (they carry no document fact);
# matched anywhere, whatever the prompt texts passed in.
_PROMPT_PATTERNS = (
    re.compile(r"\(End of (?:part \d+|the \w+(?: \w+)?)\.\)", re.IGNORECASE),
    re.compile(r"\bSummarize (?:part \d+|the (?:report|paper|story|meeting transcript|conversation|whole))\b",
               re.IGNORECASE),
    re.compile(r"\bHere is (?:part \d+|the (?:report|paper|story|meeting transcript|conversation))\b",
               re.IGNORECASE),
    re.compile(r"\bWrite in (?:the language of|[A-Z][a-z]+\.)", re.IGNORECASE),
    re.compile(r"\brepeat(?:ing)? (?:yourself|myself)\b|\bas you (?:requested|asked)\b", re.IGNORECASE),
    # the instruction paraphrased (eval rouge on dialogue_dev, single mode, after a retry: "Fully rewritten as
    # follows, using only facts stated directly and not repeating myself.")
    re.compile(r"\busing only (?:the )?facts\b|\b(?:rewritten|summari[sz]ed|written) as follows\b", re.IGNORECASE),
    # the assistant talking to the user or about the format instead of the document (walk over the shared data:
    # "Please go ahead and share the next part of the conversation, which will help me improve it further",
    # "it's not repeated again in this exact same 5 bullet points format")
    re.compile(r"\bplease (?:go ahead|share|provide|send)\b|\blet me know\b|\bI hope this helps\b"
               r"|\bhelp me improve\b|\bthe next part of the \w+|\bbullet points?\b"
               r"|\bsorry for any (?:confusion|misunderstanding|inconvenience)\b", re.IGNORECASE),
    # talk about the prompt instead of the document ("The conversation above was re-edited ...")
    re.compile(r"\b(?:the|this) (?:conversation|text|report|document|story|transcript|chat) above\b",
               re.IGNORECASE),
    re.compile(r"\bbullet points, one line each\b", re.IGNORECASE),
    re.compile(r"\bin two sentences: who did what\b", re.IGNORECASE),
    re.compile(r"\busing only facts stated in the text\b", re.IGNORECASE),
    re.compile(r"^#{2,3} (?:System|User|Assistant)\b|<\|im_(?:start|end)\|>|<\|(?:user|assistant|system)\|>",
               re.IGNORECASE | re.MULTILINE),
)
# A message header as the loaders render chats ("[2023-11-24 15:19] Name:") or as exports write them
# ("24/11/2023, 15:19 - Name:", "[24.11.23, 15:19:02] Name:"). A citation "[2023-11-24 15:19]" at the
# end of a sentence has no "Name:" after it and passes.
_HEADER = re.compile(
    r"\[\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\]\s*[^\s:\]][^:\n\]]{0,40}:"
    r"|^\s*\[\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2})?\]"  # a line opened by a stamp imitates a transcript
    r"|^\s*\[?\d{1,4}[./-]\d{1,2}[./-]\d{2,4},? \d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?\]?"
    r"\s*(?:-\s*)?[^:\n]{1,40}:",
    re.MULTILINE)
_URL = re.compile(r"\bhttps?://\S+|\bwww\.[\w-]+\.\w+\S*", re.IGNORECASE)


@dataclass(frozen=True)
class Flag:
    """One problem found in a summary: ``kind`` (see :data:`KINDS`) and what was found."""

    kind: str
    detail: str


def words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def check_summary(summary: str, *, source_text: str, language: str | None = None,
                  prompt_texts: Iterable[str] = (), extractive: bool = False,
                  min_words: int = MIN_WORDS) -> list[Flag]:
    """Every problem of ``summary``; an empty list means it may be shown.

    ``language``: the ISO code the summary was asked in (None: not checked). ``prompt_texts``: the
    instructions the model was given. ``extractive``: the summary is the document's own sentences, which
    copy it, in its language, links and names included, by design: only emptiness, echoes and
    repetition are checked.
    """
    summary_words = words(summary)
    source_words = words(source_text)
    flags: list[Flag] = []
    needed = min(min_words, max(3, len(source_words) // MIN_WORDS_SOURCE_SHARE))
    said = [word for word in summary_words if _LETTER.search(word)]  # numbers alone say nothing
    if len(said) < needed:
        flags.append(Flag("too_short", f"{len(said)} words, at least {needed} expected"))
    flags += prompt_echo(summary, summary_words, source_words, prompt_texts)
    if not extractive:
        flags += source_copy(summary_words, source_words)
        header = _HEADER.search(summary)
        if header:
            flags.append(Flag("raw_header", f"message header copied: {header.group(0).strip()!r}"))
        url = _URL.search(summary)
        if url:
            flags.append(Flag("url", f"raw URL: {url.group(0)[:80]!r}"))
        flags += wrong_language(summary, said, language)
    flags += repetition(summary, summary_words)
    return flags


def prompt_echo(summary: str, summary_words: Sequence[str], source_words: Sequence[str],
                prompt_texts: Iterable[str]) -> list[Flag]:
    """Instruction text in the output: a known prompt piece, or a run of words shared with the
    prompts that the document itself does not contain."""
    for pattern in _PROMPT_PATTERNS:
        found = pattern.search(summary)
        if found and not _in_source(found.group(0), source_words):
            return [Flag("prompt_echo", f"instruction text: {found.group(0)!r}")]
    prompt_grams = set()
    for text in prompt_texts:
        prompt_grams |= _ngrams(words(text), ECHO_WORDS)
    if not prompt_grams:
        return []
    source_grams = _ngrams(source_words, ECHO_WORDS) & prompt_grams
    for index in range(len(summary_words) - ECHO_WORDS + 1):
        gram = tuple(summary_words[index:index + ECHO_WORDS])
        if gram in prompt_grams and gram not in source_grams:
            return [Flag("prompt_echo", "instruction text: '" + " ".join(gram) + " ...'")]
    return []


def source_copy(summary_words: Sequence[str], source_words: Sequence[str]) -> list[Flag]:
    """A long run copied word for word, or a summary that is mostly copied runs."""
    if len(summary_words) < COPY_WORDS:
        return []
    source_grams = _ngrams(source_words, COPY_WORDS)
    covered = [False] * len(summary_words)
    for index in range(len(summary_words) - COPY_WORDS + 1):
        if tuple(summary_words[index:index + COPY_WORDS]) in source_grams:
            covered[index:index + COPY_WORDS] = [True] * COPY_WORDS
    longest = run = 0
    for flag in covered:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    share = sum(covered) / len(summary_words)
    if longest >= COPY_RUN_MAX or (len(summary_words) >= 20 and share >= COPY_SHARE_MAX):
        return [Flag("source_copy", f"{share:.0%} of the words copied from the document, "
                                    f"longest run {longest} words")]
    return []


def wrong_language(summary: str, summary_words: Sequence[str], language: str | None) -> list[Flag]:
    """The summary's language differs from the one asked for (checked on enough words only)."""
    if not language:
        return []
    found = guess_language(_prose(summary))
    if found in LATIN_LANGUAGES and len(summary_words) < LANGUAGE_MIN_WORDS:
        return []  # a few Latin-script words may be names; another script decides by itself
    if found not in ("und", language.lower()):
        return [Flag("wrong_language", f"written in '{found}', '{language}' was asked")]
    return []


def repetition(summary: str, summary_words: Sequence[str]) -> list[Flag]:
    """The same line twice, or a text made of few distinct word sequences."""
    seen: set[str] = set()
    for line in summary.splitlines():
        norm = normalize_line(line)
        if len(norm.split()) >= 4:
            if norm in seen:
                return [Flag("repetition", f"line repeated: {line.strip()[:60]!r}")]
            seen.add(norm)
    if len(summary_words) >= 40:
        trigrams = [tuple(summary_words[i:i + 3]) for i in range(len(summary_words) - 2)]
        distinct = len(set(trigrams)) / len(trigrams)
        if distinct < DISTINCT_TRIGRAMS_MIN:
            return [Flag("repetition", f"only {distinct:.0%} of the word sequences are distinct")]
    return []


_REASONS = {
    "prompt_echo": "repeated its instructions",
    "source_copy": "copied the document word for word",
    "raw_header": "copied raw chat messages",
    "url": "copied raw links",
    "wrong_language": "was in the wrong language",
    "too_short": "came out empty",
    "repetition": "repeated itself",
}


def reason(flags: Sequence[Flag]) -> str:
    """What went wrong, in words: "repeated its instructions and copied raw links"."""
    said = list(dict.fromkeys(_REASONS[flag.kind] for flag in flags if flag.kind in _REASONS))
    return " and ".join(said[:2]) if said else "failed the quality checks"


def describe(flags: Sequence[Flag]) -> str:
    """The one line shown above the fallback: why the model's summary was not shown."""
    return f"The model's summary {reason(flags)}; showing the key passages instead."


def _prose(text: str) -> str:
    """The text without URLs and message headers, which are language-neutral."""
    return _HEADER.sub(" ", _URL.sub(" ", text))


def _ngrams(tokens: Sequence[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}


def _in_source(phrase: str, source_words: Sequence[str]) -> bool:
    """Whether the words of ``phrase`` occur in this order in the document (a quoted heading, say)."""
    wanted = words(phrase)
    if not wanted:
        return False
    size = len(wanted)
    first = wanted[0]
    return any(source_words[i] == first and list(source_words[i:i + size]) == wanted
               for i in range(len(source_words) - size + 1))
