"""Shared pieces of the benchmarks: the default model, the books, RSS, output."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
BOOKS_DIR = (REPO.parent / "shared" / "data" / "books").resolve()
BOOKS = {
    "moby": BOOKS_DIR / "gutenberg_2701_Moby_Dick_Melville.txt",
    "cats": BOOKS_DIR / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt",
}
RESULTS_DIR = REPO / ".cache" / "bench"  # JSON lines, one record per measurement (git-ignored)


def load_default_model(decode_weights: str = "bf16") -> tuple[Any, Any]:
    """(model, tokenizer) of the default model in bf16 on CPU, packed as the app uses it; the base
    weights, without the shipped SepLLM adapter (section 4 of docs/BENCHMARKS.md measures that one).

    ``decode_weights``: the weights the decode step reads (``app.engine.models.load_model``); the
    app's default is ``auto``, which is int4 for the default model.
    """
    from app.engine.default_model import DEFAULT_MODEL_NAME
    from app.engine.models import load_model

    loaded = load_model(DEFAULT_MODEL_NAME, pack=True, decode_weights=decode_weights)
    return loaded.model.eval(), loaded.tokenizer


def book_ids(tokenizer: Any, book: str, tokens: int) -> Sequence[int]:
    """The first ``tokens`` token ids of a shared book after its Gutenberg header (``array("q")``).

    Tokenized the way the app tokenizes a document (``sepllm_core.recall.document_ids`` over
    ``encode_long``), so peak-RSS measurements see the product's path.
    """
    from sepllm_core.recall import document_ids

    ids = document_ids(BOOKS[book].read_text(encoding="utf-8"), tokenizer, tokens)
    if len(ids) < tokens:
        raise SystemExit(f"{BOOKS[book].name} has only {len(ids)} tokens, {tokens} asked")
    return ids


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def threads() -> int:
    return torch.get_num_threads()


def emit(record: dict[str, Any], out: Path | None) -> None:
    """Print one JSON line and append it to ``out``."""
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def stamp() -> dict[str, Any]:
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": threads(), "pid": os.getpid()}
