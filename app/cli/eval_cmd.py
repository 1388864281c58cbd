"""``sepsum eval``: long-range recall, streaming perplexity and ROUGE of summaries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.errors import DocumentError

CACHES = ("sepllm", "window", "full")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="measure recall, perplexity and summary quality")
    sub = parser.add_subparsers(dest="eval_command", metavar="MEASURE", required=True)

    recall = sub.add_parser("recall", help="planted-fact recall: are early facts still in view at the end?")
    recall.add_argument("text_file", metavar="TEXT_FILE", type=Path, help="a plain-text document (e.g. a book)")
    recall.add_argument("--cache", choices=("sepllm", "window", "full", "control", "none"), default="sepllm",
                        help="control: a window that also keeps the fact sentences; none: no document")
    recall.add_argument("--facts", type=int, default=10, help="facts planted per document (default 10)")
    recall.add_argument("--seeds", default="0", help="comma-separated seeds, one document pass each (default 0)")
    recall.add_argument("--open-values", action="store_true",
                        help="made-up values (codes, numbers, town names) that no model can guess from its training")
    _add_stream_options(recall, default_tokens=4096)
    recall.set_defaults(func=_recall)

    perplexity = sub.add_parser("perplexity", help="streaming perplexity over the first N tokens of a text")
    perplexity.add_argument("text_file", metavar="TEXT_FILE", type=Path, help="a plain-text document")
    perplexity.add_argument("--cache", choices=CACHES, default="sepllm")
    perplexity.add_argument("--score-from", type=int, default=0, metavar="T",
                            help="score only tokens from index T on (default: all tokens read)")
    _add_stream_options(perplexity, default_tokens=8192)
    perplexity.set_defaults(func=_perplexity)

    rouge = sub.add_parser("rouge", help="ROUGE of generated summaries against reference summaries")
    from app.summarize import rouge_eval

    rouge_eval.add_arguments(rouge)
    rouge.set_defaults(func=_rouge)


def _add_stream_options(parser: argparse.ArgumentParser, default_tokens: int) -> None:
    parser.add_argument("--tokens", type=int, default=default_tokens, metavar="N",
                        help=f"tokens of the text to read (default {default_tokens})")
    parser.add_argument("--budget", type=int, default=1024, help="total KV entries kept (default 1024)")
    parser.add_argument("--initial", type=int, default=4, help="initial tokens kept (attention sinks)")
    parser.add_argument("--separators", type=int, default=None,
                        help="separator entries kept by sepllm (default: a quarter of the budget)")
    parser.add_argument("--local", type=int, default=None, help="recent-window entries (default: by policy)")
    parser.add_argument("--no-fill", action="store_true",
                        help="sepllm keeps exactly --local newest tokens instead of filling the budget with them "
                             "(the pattern a SepLLM-adapted model was trained on)")
    parser.add_argument("--positions", choices=("original", "shifted", "auto"), default="auto")
    parser.add_argument("--chunk-size", type=int, default=256, help="tokens per prefill forward")
    parser.add_argument("--kv-quant", choices=("none", "int8"), default="none",
                        help="store cached keys/values as int8 + a scale (0.52x the bytes of bf16)")
    parser.add_argument("--model", default=None, help="registered model name or path (default model if omitted)")
    parser.add_argument("--format", choices=("json", "text"), default="text")


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DocumentError(f"{path} cannot be read ({exc.strerror}): check the path") from exc
    if not text.strip():
        raise DocumentError(f"{path} is empty: give a text file with content")
    return text


def _load_for(args: argparse.Namespace, config: Any) -> tuple[Any, Any, Any, Any]:
    """(model, tokenizer, config, separator table) for ``--model``: a SepLLM-adapted model brings the
    separator set it was trained on and, where ``--positions`` is auto, its position mode (as summaries do)."""
    from app.engine.models import load_model
    from app.summarize.pipeline import cache_for_model

    loaded = load_model(args.model, pack=True, decode_weights="bf16")
    if config is not None:
        config = cache_for_model(config, loaded)
    return loaded.model, loaded.tokenizer, config, loaded.separator_table


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise SystemExit(f"sepsum eval: --seeds must be comma-separated integers, got {text!r}")
    return seeds


def _config(args: argparse.Namespace, policy: str) -> Any:
    from sepllm_core.recall import cache_config_for

    try:
        config = cache_config_for(policy, args.budget, initial=args.initial, separators=args.separators,
                                  local=args.local, chunk_size=args.chunk_size, positions=args.positions,
                                  fill_recent=not args.no_fill)
        return config.with_(kv_quant=args.kv_quant) if config is not None else None
    except ValueError as exc:
        raise SystemExit(f"sepsum eval: {exc}") from exc


def _recall(args: argparse.Namespace) -> int:
    from sepllm_core.recall import MAX_FACTS, cache_factory_for, measure_recall

    seeds = _seeds(args.seeds)
    if not 1 <= args.facts <= MAX_FACTS:
        raise SystemExit(f"sepsum eval: --facts must be 1 to {MAX_FACTS} (each fact needs its own subject), "
                         f"got {args.facts}")
    text = _read_text(args.text_file)
    config = _config(args, args.cache)
    model, tokenizer, config, table = _load_for(args, config)
    report = measure_recall(
        model, tokenizer, text, tokens=args.tokens,
        cache_factory=cache_factory_for(model, tokenizer, config, separators=table),
        cache_name=args.cache, facts=args.facts, seeds=seeds, chunk_size=args.chunk_size,
        protect_facts=args.cache == "control", open_values=args.open_values,
    )
    result = report.to_dict()
    result["file"] = str(args.text_file)
    result["cache_config"] = config.to_dict() if config is not None else None
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.text_file.name}: {result['tokens']} tokens, cache {args.cache}, seeds {seeds}")
    print(f"{'depth':>6} {'kind':<10} {'value':<10} {'rank':>4} {'logprob':>9}  best distractor")
    for fact in result["facts"]:
        print(f"{fact['depth']:>6.2f} {fact['kind']:<10} {fact['value']:<10} {fact['rank']:>4} "
              f"{fact['logprob']:>9.2f}  {fact['best_distractor']} ({fact['best_distractor_logprob']:.2f})")
    print(f"recall early {result['recall_early_count']} (mean rank {_fmt(result['mean_rank_early'])}), "
          f"late {result['recall_late_count']} (mean rank {_fmt(result['mean_rank_late'])}); "
          f"chance 1 in {round(1 / result['chance_recall'])}")
    print(f"KV peak {result['kv_bytes_peak'] / 2**20:.1f} MiB of {result['kv_bytes_full_equivalent'] / 2**20:.1f} MiB "
          f"full-cache equivalent; {result['seconds']:.1f} s")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _perplexity(args: argparse.Namespace) -> int:
    from app.engine.memory import sample_memory
    from sepllm_core.perplexity import stream_perplexity

    text = _read_text(args.text_file)
    config = _config(args, args.cache)
    model, tokenizer, config, table = _load_for(args, config)
    result = stream_perplexity(model, tokenizer, text, tokens=args.tokens, config=config,
                               score_from=args.score_from, separators=table)
    result["rss_peak_bytes"] = sample_memory()["peak_rss_bytes"]  # of the whole process so far
    result["file"] = str(args.text_file)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.text_file.name}: {result['tokens']} tokens, cache {args.cache}: ppl {result['ppl']:.3f}, "
              f"KV peak {result['kv_bytes_peak'] / 2**20:.1f} MiB of "
              f"{result['kv_bytes_full_equivalent'] / 2**20:.1f} MiB, "
              f"{result['prefill_tokens_per_s']:.0f} tok/s, {result['seconds']:.1f} s")
    return 0


def _rouge(args: argparse.Namespace) -> int:
    from app.summarize import rouge_eval

    return int(rouge_eval.run(args) or 0)
