"""Prompts per kind of document, length and style, framed by the model's chat template.

Small models follow an instruction only when it is repeated after the text, so every prompt
puts the instruction in the system turn (before the document) and again after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("report", "paper", "book", "meeting", "chat")

# Token limit of the summary, and how many points / paragraphs to ask for, per length.
MAX_NEW_TOKENS = {"short": 128, "medium": 256, "long": 512}
POINTS = {"short": 3, "medium": 5, "long": 8}
PARAGRAPHS = {"short": "one short paragraph", "medium": "two paragraphs", "long": "four paragraphs"}
# The summary may not end before this share of its token limit (a two-sentence "medium" summary of a
# 7k-token story scored the lowest ROUGE of every mode), nor before a quarter of the document's length.
MIN_SHARE = {"short": 0.2, "medium": 0.5, "long": 0.5}
NOTE_TOKENS = 64
CHUNK_SUMMARY_TOKENS = 96


@dataclass(frozen=True)
class KindText:
    noun: str  # how the instruction names the document
    focus: str  # what a summary of this kind should cover
    structured: str  # the sections of the structured style


_KIND_TEXT = {
    "report": KindText("report", "its purpose, the main findings and the recommendations",
                       "Key points, Findings, Recommendations"),
    "paper": KindText("paper", "the research question, the method, the main results and the conclusion",
                      "Question, Method, Results, Conclusion"),
    "book": KindText("story", "the plot, the main characters and how it ends",
                     "Main characters, Plot, Ending"),
    "meeting": KindText("meeting transcript", "the topics discussed, the decisions made and the action items",
                        "Key points, Decisions, Action items (who does what), Who said what"),
    "chat": KindText("conversation", "what was discussed, what was decided and who will do what",
                     "Key points, Decisions, Action items (who does what), Who said what"),
}

LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "sv": "Swedish", "pl": "Polish", "tr": "Turkish", "ja": "Japanese", "ko": "Korean",
    "zh": "Chinese", "ar": "Arabic", "he": "Hebrew", "th": "Thai", "el": "Greek", "hi": "Hindi",
    "ru": "Russian", "uk": "Ukrainian", "bg": "Bulgarian", "sr": "Serbian",
}


def language_name(code: str | None) -> str | None:
    """The name to put in the instruction for a detected language code ("de" -> "German")."""
    return LANGUAGE_NAMES.get((code or "").lower())


SYSTEM = "You are a careful assistant who writes faithful summaries, using only facts stated in the text."

_SPEAKER_LINE = re.compile(r"^[#A-Z][\w .'()#-]{0,40}:\s", re.MULTILINE)


def detect_kind(document_kind: str, text: str, genre: str | None = None) -> str:
    """Guess the prompt kind from the loader's kind, an optional genre label, and the text."""
    label = (genre or "").lower()
    for word, kind in (("meeting", "meeting"), ("dialog", "chat"), ("chat", "chat"), ("story", "book"),
                       ("book", "book"), ("novel", "book"), ("paper", "paper"), ("report", "report")):
        if word in label:
            return kind
    if document_kind not in {"pdf", "text", "markdown", ""}:
        return "chat"
    lines = [line for line in text[:20000].splitlines() if line.strip()]
    if lines and len(_SPEAKER_LINE.findall(text[:20000])) >= max(5, 0.3 * len(lines)):
        return "meeting"
    head, tail = text[:4000].lower(), text[-20000:].lower()
    if "abstract" in head and ("references" in tail or "bibliography" in tail):
        return "paper"
    if len(re.findall(r"^\s*chapter\b", text, re.IGNORECASE | re.MULTILINE)) >= 2:
        return "book"
    return "report"


def instruction(kind: str, length: str, style: str, language: str | None = None,
                focus: str | None = None, after: bool = False, where: str | None = None) -> str:
    """The instruction; ``after=True`` words it for the place after the document."""
    text = _KIND_TEXT[kind]
    if where is None:
        where = "above" if after else "that follows"
    if style == "paragraphs":
        shape = f"in {PARAGRAPHS[length]}"
    elif style == "structured":
        shape = f"with these headed sections: {text.structured}; use short bullet points under each heading"
    else:
        shape = f"in {POINTS[length]} bullet points, one line each, starting with '- '"
    subject = f"the {text.noun} {where}".strip()
    parts = [f"Summarize {subject} {shape}.", f"Cover {text.focus}."]
    if focus:
        parts.append(f"Answer this: {focus.strip()}")
    if style == "structured":
        parts.append("Give page or message numbers when the text shows them.")
    if language:  # the pipeline passes a language the model writes (app.engine.languages); None asks for none
        parts.append(f"Write in {language}.")
    parts.append("Do not repeat yourself.")
    return " ".join(parts)


@dataclass(frozen=True)
class ChatFrame:
    """The text around turns, from the model's chat template (or a plain one).

    ``start`` + system text + ``to_user`` + user text + ``to_assistant`` opens the answer;
    after the answer, ``after_assistant`` closes it and opens the next user turn.
    """

    start: str
    to_user: str
    to_assistant: str
    after_assistant: str

    def opening(self, system: str) -> str:
        return self.start + system + self.to_user


PLAIN = ChatFrame(start="### System\n", to_user="\n\n### User\n", to_assistant="\n\n### Assistant\n",
                  after_assistant="\n\n### User\n")

_MARKS = ("\u2063S\u2063", "\u2063U1\u2063", "\u2063A1\u2063", "\u2063U2\u2063")


def chat_frame(tokenizer) -> ChatFrame:
    """Cut the model's chat template at marker texts; models without a template get :data:`PLAIN`."""
    if not getattr(tokenizer, "chat_template", None):
        return PLAIN
    system, user1, answer, user2 = _MARKS
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user1},
                {"role": "assistant", "content": answer}, {"role": "user", "content": user2}]
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        start, rest = rendered.split(system, 1)
        to_user, rest = rest.split(user1, 1)
        to_assistant, rest = rest.split(answer, 1)
        after_assistant, final = rest.split(user2, 1)
    except Exception:  # templates that reject a system turn or reorder content
        return PLAIN
    if final != to_assistant:  # the generation prompt differs from a past answer's opening
        to_assistant = final
    return ChatFrame(start=start, to_user=to_user, to_assistant=to_assistant,
                     after_assistant=after_assistant)


@dataclass(frozen=True)
class Framing:
    """Text pieces of one summary prompt around the document (which is fed separately)."""

    header: str  # protected prefix: system turn with the instruction, user turn up to the document
    footer: str  # the instruction again, then the assistant's turn opens


def summary_prompt(frame: ChatFrame, kind: str, length: str, style: str, language: str | None = None,
                   focus: str | None = None) -> Framing:
    noun = _KIND_TEXT[kind].noun
    system = SYSTEM + " " + instruction(kind, length, style, language, focus)
    header = frame.opening(system) + f"Here is the {noun}:\n\n"
    footer = "\n\n" + instruction(kind, length, style, language, focus, after=True) + frame.to_assistant
    return Framing(header=header, footer=footer)


def note_request(frame: ChatFrame, kind: str, part: int) -> str:
    """Closes a part of the document and asks for a short summary of it: the note."""
    noun = _KIND_TEXT[kind].noun
    return (f"\n\n(End of part {part}.) Summarize part {part} of the {noun} in two sentences: "
            f"who did what, decisions, numbers." + frame.to_assistant)


def next_part(frame: ChatFrame, part: int) -> str:
    """Closes the assistant's note and opens the next part of the document."""
    return frame.after_assistant + f"Here is part {part}:\n\n"


def notes_header(frame: ChatFrame, kind: str, length: str, style: str, language: str | None = None,
                 focus: str | None = None) -> str:
    noun = _KIND_TEXT[kind].noun
    system = SYSTEM + " " + instruction(kind, length, style, language, focus)
    return frame.opening(system) + f"Here is part 1 of the {noun}:\n\n"


def notes_footer(frame: ChatFrame, kind: str, length: str, style: str, language: str | None = None,
                 focus: str | None = None, had_notes: bool = True) -> str:
    noun = _KIND_TEXT[kind].noun
    if not had_notes:
        return "\n\n" + instruction(kind, length, style, language, focus, after=True) + frame.to_assistant
    return (f"\n\n(End of the {noun}.) Now summarize the whole {noun}, from the summaries of its parts "
            f"and the text above. " + instruction(kind, length, style, language, focus, where="")
            + frame.to_assistant)


def prompt_texts(frame: ChatFrame, kind: str, length: str, style: str, language: str | None = None,
                 focus: str | None = None) -> list[str]:
    """Every instruction text a mode may give the model (without the chat template's own markers):
    what a summary must never repeat."""
    texts = [SYSTEM, instruction(kind, length, style, language, focus),
             instruction(kind, length, style, language, focus, after=True),
             notes_footer(PLAIN, kind, length, style, language, focus),
             note_request(PLAIN, kind, 1), next_part(PLAIN, 2), notes_header(PLAIN, kind, length, style, language)]
    texts += [chunk_prompt(PLAIN, kind, 1, 2).footer,
              reduce_prompt(PLAIN, kind, length, style, language, focus).footer]
    return [text.replace(PLAIN.to_assistant, "").replace(PLAIN.after_assistant, "") for text in texts]


def chunk_prompt(frame: ChatFrame, kind: str, part: int, parts: int) -> Framing:
    """Map step of map-reduce: a few sentences on one chunk."""
    noun = _KIND_TEXT[kind].noun
    ask = (f"Summarize part {part} of {parts} of the {noun} in two or three sentences. "
           f"Cover {_KIND_TEXT[kind].focus}.")
    header = frame.opening(SYSTEM + " " + ask) + f"Part {part} of {parts} of the {noun}:\n\n"
    return Framing(header=header, footer="\n\n" + ask + frame.to_assistant)


def reduce_prompt(frame: ChatFrame, kind: str, length: str, style: str, language: str | None = None,
                  focus: str | None = None) -> Framing:
    """Reduce step: the summary of the chunk summaries."""
    noun = _KIND_TEXT[kind].noun
    system = SYSTEM + " " + instruction(kind, length, style, language, focus)
    header = frame.opening(system) + f"Here are summaries of consecutive parts of the {noun}:\n\n"
    ask = instruction(kind, length, style, language, focus, where="")
    footer = "\n\nUsing only these part summaries: " + ask + frame.to_assistant
    return Framing(header=header, footer=footer)
