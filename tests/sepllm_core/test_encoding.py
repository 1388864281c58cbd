"""Piecewise tokenization gives exactly one call's ids, on real books and chats and other tokenizer families."""

from __future__ import annotations

import array
import subprocess
import sys

import pytest

from sepllm_core import encoding
from sepllm_core.encoding import encode_long

from .test_separators import byte_level_bpe, unigram

BOOKS = ("gutenberg_2701_Moby_Dick_Melville.txt", "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt")


def _whole(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("book", BOOKS)
def test_whole_books_equal_one_call(default_model, shared_data, book):
    _, tokenizer = default_model
    text = (shared_data / "books" / book).read_text(encoding="utf-8")
    ids = encode_long(tokenizer, text)
    assert isinstance(ids, array.array) and ids.typecode == "q"
    assert len(ids) > 100_000 and list(ids) == _whole(tokenizer, text)


def test_many_small_pieces_over_a_chat_export(default_model, shared_data):
    """Hundreds of cuts through emoji, URLs, timestamps and non-Latin text."""
    _, tokenizer = default_model
    folder = shared_data / "chats" / "whatsapp"
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt")))[:150_000]
    assert list(encode_long(tokenizer, text, piece_chars=700, overlap_chars=120)) == _whole(tokenizer, text)


@pytest.mark.parametrize("build", [byte_level_bpe, unigram], ids=["byte-level-bpe", "unigram-metaspace"])
def test_other_tokenizer_families(shared_data, build):
    tokenizer = build()
    text = (shared_data / "books" / BOOKS[1]).read_text(encoding="utf-8")[20_000:60_000]
    assert list(encode_long(tokenizer, text, piece_chars=900, overlap_chars=150)) == _whole(tokenizer, text)


def test_unconfirmed_cuts_fall_back_to_one_call(default_model, monkeypatch):
    _, tokenizer = default_model
    monkeypatch.setattr(encoding, "_CUT_TRIES", 0)
    text = "A line of text, and another one.\n" * 400
    assert list(encode_long(tokenizer, text, piece_chars=500, overlap_chars=100)) == _whole(tokenizer, text)
    with pytest.raises(ValueError, match="piece_chars"):
        encode_long(tokenizer, text, piece_chars=0)


def test_memory_stays_bounded(default_model_dir, shared_data):
    """In a fresh process: one call on Moby Dick grows the peak RSS by ~150 MB, the pieces by a fraction."""
    book = shared_data / "books" / BOOKS[0]
    # VmHWM, not ru_maxrss: a child forked from this big test process inherits its ru_maxrss.
    script = (
        "import sys\n"
        "def peak():\n"
        "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "    return int(line.split()[1]) * 1024\n"
        "from transformers import AutoTokenizer\n"
        "from sepllm_core.encoding import encode_long\n"
        f"tok = AutoTokenizer.from_pretrained({str(default_model_dir)!r})\n"
        f"text = open({str(book)!r}, encoding='utf-8').read()\n"
        "before = peak()\n"
        "ids = encode_long(tok, text) if sys.argv[1] == 'pieces' else tok(text, add_special_tokens=False)['input_ids']\n"
        "print(peak() - before)\n"
    )
    growth = {}
    for how in ("pieces", "whole"):
        result = subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        growth[how] = int(result.stdout.strip().splitlines()[-1])
    assert growth["whole"] > 60 * 2**20, growth  # the problem this module exists for
    assert growth["pieces"] < growth["whole"] / 3, growth
