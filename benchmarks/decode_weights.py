"""What int4 decode weights cost in quality: teacher-forced decode steps on bf16 vs int4 weights, side by side.

For each book, one Session per weight choice reads the first ``--context`` tokens, then feeds the
next ``--tokens`` tokens one at a time through the decode step (the path that writes a summary),
scoring each next token. Reported per book: the decode perplexity of each choice, the share of
steps whose top token agrees with the bf16 step's, and the mean KL(bf16 || int4) in nats.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.decode_weights --context 512 --tokens 512 \\
        --out docs/benchmarks/decode_weights_s5.jsonl
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch


def teacher_forced(model: Any, tokenizer: Any, ids: list[int], context: int, tokens: int) -> torch.Tensor:
    """Logits ``[tokens, vocab]`` (fp32) of decode steps over ``ids[context:context + tokens]``."""
    from sepllm_core.config import CacheConfig
    from sepllm_core.generate import Session

    session = Session(model, tokenizer, CacheConfig.balanced())
    for _ in session.feed(torch.tensor(ids[:context])):
        pass
    return torch.stack([session.step(token) for token in ids[context:context + tokens]])


def compare(logits: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, Any]:
    """Perplexity per choice, top-1 agreement and KL of each choice against ``bf16``."""
    reference = logits["bf16"].log_softmax(-1)
    row: dict[str, Any] = {}
    for name, values in logits.items():
        row[f"ppl_{name}"] = math.exp(torch.nn.functional.cross_entropy(values, targets).item())
        if name != "bf16":
            row[f"top1_agreement_{name}"] = (values.argmax(-1) == logits["bf16"].argmax(-1)).float().mean().item()
            row[f"kl_{name}"] = torch.nn.functional.kl_div(values.log_softmax(-1), reference, log_target=True,
                                                           reduction="batchmean").item()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=512, help="tokens read before the decode steps")
    parser.add_argument("--tokens", type=int, default=512, help="decode steps scored")
    parser.add_argument("--books", nargs="+", default=["moby", "cats"], choices=["moby", "cats"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from benchmarks import common

    models = {name: common.load_default_model(name) for name in ("bf16", "int4")}
    tokenizer = models["bf16"][1]
    for book in args.books:
        ids = list(common.book_ids(tokenizer, book, args.context + args.tokens + 1))
        logits = {name: teacher_forced(model, tokenizer, ids, args.context, args.tokens)
                  for name, (model, _) in models.items()}
        targets = torch.tensor(ids[args.context + 1:args.context + args.tokens + 1])
        row = {"bench": "decode_weights", "book": book, "context": args.context, "tokens": args.tokens,
               **compare(logits, targets), **common.stamp()}
        common.emit(row, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
