"""Token-budgeted pieces cut on paragraph, message or sentence ends."""

import pytest

from app.summarize.chunking import boundary_strengths, split_ids, split_points


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


def test_pieces_respect_the_budget_and_cover_every_token(tokenizer):
    text = "\n\n".join(f"Paragraph {i} says that the board met and decided item {i}. " * 3 for i in range(40))
    ids = tokenizer(text, add_special_tokens=False).input_ids
    pieces = split_ids(ids, tokenizer, 200)
    assert [t for piece in pieces for t in piece] == ids
    assert all(len(piece) <= 200 for piece in pieces)
    for piece in pieces[:-1]:
        assert tokenizer.decode(piece).endswith("\n\n")  # cut on a paragraph end


def test_messages_are_cut_on_line_ends_when_there_are_no_paragraphs(tokenizer):
    text = "\n".join(f"Alice: message number {i} about the trip." for i in range(200))
    ids = tokenizer(text, add_special_tokens=False).input_ids
    for piece in split_ids(ids, tokenizer, 150)[:-1]:
        assert tokenizer.decode(piece).endswith("\n")


def test_text_without_boundaries_is_cut_hard():
    assert split_points([0] * 10, 4) == [4, 8, 10]
    assert split_points([0, 0, 1, 0, 0, 0], 4) == [3, 6]  # a sentence end in the second half
    # the line end lies in the first half (too short a piece): the sentence end is used
    assert split_points([0, 2, 0, 1, 0, 0], 4) == [4, 6]
    with pytest.raises(ValueError):
        split_points([0], 0)


def test_paragraph_beats_sentence(tokenizer):
    strengths = [0, 1, 0, 3, 0, 1, 0, 0]
    assert split_points(strengths, 6) == [4, 8]
    ids = tokenizer("One.\n\nTwo.", add_special_tokens=False).input_ids
    assert max(boundary_strengths(ids, tokenizer)) == 3
