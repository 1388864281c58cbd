"""Prompts: the instruction before and after the document, kinds, lengths, styles, chat templates."""

import pytest

from app.summarize import prompts


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


def test_chat_frame_is_cut_from_the_models_template(tokenizer):
    frame = prompts.chat_frame(tokenizer)
    assert frame.start == "<|im_start|>system\n"
    assert frame.to_user == "<|im_end|>\n<|im_start|>user\n"
    assert frame.to_assistant == "<|im_end|>\n<|im_start|>assistant\n"


def test_models_without_a_template_get_the_plain_one():
    class NoTemplate:
        chat_template = None

    assert prompts.chat_frame(NoTemplate()) is prompts.PLAIN


def test_a_template_that_fails_falls_back_to_plain():
    class Broken:
        chat_template = "{{ raise }}"

        def apply_chat_template(self, *args, **kwargs):
            raise ValueError("System role not supported")

    assert prompts.chat_frame(Broken()) is prompts.PLAIN


@pytest.mark.parametrize("kind", prompts.KINDS)
@pytest.mark.parametrize("style", ["bullets", "paragraphs", "structured"])
def test_the_instruction_comes_before_and_after_the_document(tokenizer, kind, style):
    framing = prompts.summary_prompt(prompts.chat_frame(tokenizer), kind, "medium", style)
    before = prompts.instruction(kind, "medium", style)
    after = prompts.instruction(kind, "medium", style, after=True)
    assert before in framing.header and after in framing.footer
    assert framing.footer.endswith("<|im_start|>assistant\n")
    assert "that follows" in before and "above" in after


def test_lengths_styles_language_and_focus_change_the_instruction():
    assert "3 bullet points" in prompts.instruction("report", "short", "bullets")
    assert "8 bullet points" in prompts.instruction("report", "long", "bullets")
    assert "paragraph" in prompts.instruction("report", "short", "paragraphs")
    structured = prompts.instruction("meeting", "medium", "structured")
    assert "Decisions" in structured and "Action items" in structured and "Who said what" in structured
    assert "Write in French." in prompts.instruction("report", "short", "bullets", language="French")
    assert "language" not in prompts.instruction("report", "short", "bullets")  # never a language unasked
    assert "Answer this: What is the plot?" in prompts.instruction("book", "short", "bullets",
                                                                   focus="What is the plot?")
    assert prompts.MAX_NEW_TOKENS["short"] < prompts.MAX_NEW_TOKENS["medium"] < prompts.MAX_NEW_TOKENS["long"]


def test_detect_kind():
    transcript = "\n".join(f"Speaker {i % 3}: we should look at item {i}." for i in range(20))
    assert prompts.detect_kind("text", transcript) == "meeting"
    assert prompts.detect_kind("whatsapp", "hi") == "chat"
    assert prompts.detect_kind("pdf", "Abstract\nWe study...\n" + "x " * 100 + "\nReferences\n[1] A.") == "paper"
    assert prompts.detect_kind("text", "Chapter 1\nIt was...\n\nChapter 2\nThen...") == "book"
    assert prompts.detect_kind("pdf", "The council reviewed the budget.") == "report"
    assert prompts.detect_kind("text", "x", genre="short story (Gutenberg sci-fi)") == "book"
    assert prompts.detect_kind("text", "x", genre="meeting transcript") == "meeting"
    assert prompts.detect_kind("text", "x", genre="dialogue") == "chat"


def test_notes_prompts_frame_the_turns(tokenizer):
    frame = prompts.chat_frame(tokenizer)
    request = prompts.note_request(frame, "report", 2)
    assert "part 2" in request and request.endswith("<|im_start|>assistant\n")
    assert prompts.next_part(frame, 3).startswith("<|im_end|>") and "part 3:" in prompts.next_part(frame, 3)
    footer = prompts.notes_footer(frame, "report", "short", "bullets")
    assert "summaries of its parts" in footer and footer.endswith("<|im_start|>assistant\n")
    assert "parts" not in prompts.notes_footer(frame, "report", "short", "bullets", had_notes=False)


def test_detected_language_codes_become_names():
    assert prompts.language_name("de") == "German"
    assert prompts.language_name(None) is None and prompts.language_name("latin") is None
