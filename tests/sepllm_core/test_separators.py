"""Separator tables from three tokenizer families: the default model's, a byte-level BPE and a Unigram."""

from __future__ import annotations

import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from sepllm_core.separators import is_separator_text, separator_table

CORPUS = [
    "Call me Ishmael. Some years ago, never mind how long; I sailed!\n",
    "Is it true? Yes: it is.\n\nA new paragraph, with commas, and more.\n",
    "我们去海边。好吗？是的，我们走吧！注意：风很大；\n",
    "The cat sat on the mat. The dog, however, did not.\n",
] * 3


# The rule written out independently of ``is_separator_text``: the last character before any trailing
# whitespace is sentence or clause punctuation (ASCII or full-width), or that trailing whitespace holds
# a line break. Special tokens never count.
_ENDS_IN_PUNCTUATION = re.compile(r"[.,;:!?\u3002\uff0c\uff1b\uff1a\uff01\uff1f][ \t\r\n\u3000]*\Z")
_ENDS_IN_LINE_BREAK = re.compile(r"\n[ \t\r\n\u3000]*\Z")


def _expected_ids(tokenizer) -> set[int]:
    special = set(tokenizer.all_special_ids)
    return {i for i in range(len(tokenizer)) if i not in special
            and (_ENDS_IN_PUNCTUATION.search(text := tokenizer.decode([i])) or _ENDS_IN_LINE_BREAK.search(text))}


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="</s>")


def byte_level_bpe() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return _wrap(tok)


def unigram() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<unk>", "</s>"], unk_token="<unk>"))
    return _wrap(tok)


@pytest.mark.parametrize("text,expected", [
    (".", True), (",", True), (";", True), (":", True), ("!", True), ("?", True),
    ("。", True), ("，", True), ("；", True), ("：", True), ("！", True), ("？", True),
    ("\n", True), ("\n\n", True), (".\n", True), ("  \n  ", True), ("\r\n", True), (" .", True),
    ("end.", True), ("e.g.", True), ("word\n", True), (". ", True),
    ("word", False), (" ", False), ("", False), ("(", False), ("-", False), (".x", False), ("\t", False),
])
def test_is_separator_text(text, expected):
    assert is_separator_text(text) is expected


def test_configurable_chars_and_line_breaks():
    assert is_separator_text("-", chars="-")
    assert not is_separator_text(".", chars="!")
    assert not is_separator_text("\n", line_breaks=False)


def _flags(tokenizer, table, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return {tokenizer.decode([i]): bool(table[i]) for i in ids}


def test_default_model_tokenizer(default_model):
    _, tokenizer = default_model
    table = separator_table(tokenizer)
    assert table.dtype == torch.bool and table.numel() == len(tokenizer)
    flags = _flags(tokenizer, table, "Hello, world. Yes!\n\nNew line: ok; really?\n")
    assert flags["Hello"] is False and flags[" world"] is False
    for sep in (",", ".", "!", ":", ";", "?", "\n"):
        assert flags[sep] is True, sep
    assert not table[tokenizer.eos_token_id]
    # byte-level BPE spellings ("Ċ" is a line break, "Ġ" a space), looked up in the vocabulary itself
    separators = tokenizer.convert_tokens_to_ids([".", ",", ";", ":", "!", "?", "Ċ", "ĊĊ", "ĠĊ", "Ġ.", "),"])
    others = tokenizer.convert_tokens_to_ids(["Hello", "Ġworld", "Ġthe", "(", "-", "Ġ", "'s", ".\""])
    assert tokenizer.unk_token_id not in separators + others
    assert table[separators].all() and not table[others].any()
    assert set(table.nonzero().flatten().tolist()) == _expected_ids(tokenizer)


@pytest.mark.parametrize("build", [byte_level_bpe, unigram], ids=["byte-level-bpe", "unigram"])
def test_other_tokenizer_families(build):
    tokenizer = build()
    table = separator_table(tokenizer)
    assert table.numel() == len(tokenizer)
    texts = {tokenizer.decode([i]) for i in range(len(tokenizer))}
    assert any("\n" in t for t in texts) or build is unigram  # Metaspace+NFKC drops newlines
    assert set(table.nonzero().flatten().tolist()) == _expected_ids(tokenizer)
    ids = tokenizer("Yes: it is. 是的，我们走吧！", add_special_tokens=False)["input_ids"]
    flagged = [tokenizer.decode([i]) for i in ids if table[i]]
    assert any(t.rstrip().endswith(".") for t in flagged)
    assert any(t.rstrip()[-1:] in "，！,!" for t in flagged)  # NFKC folds full-width forms to ASCII
    assert not table[tokenizer.convert_tokens_to_ids("</s>")]
