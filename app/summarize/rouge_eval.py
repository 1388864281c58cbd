"""``sepsum eval rouge PAIRS.jsonl``: ROUGE-1/2/L of the pipeline's summaries against references.

Rows (``../shared/data/summaries/*.jsonl``) carry ``id``, ``document`` or ``dialogue``,
``references`` (a list), optionally ``genre`` and ``query``. Each row is scored against its
best reference per metric (``rouge-score``, stemmed F-measure). Several configurations
(mode x cache) run over the same rows with the model loaded once, so their numbers compare.

``run(args)`` is the entry point (``sepsum eval rouge`` registers the flags of
:func:`add_arguments`); ``python -m app.summarize.rouge_eval`` works as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

from app.errors import DocumentError
from app.summarize.events import Failed, SummaryDone
from app.summarize.guards import is_empty_summary

METRICS = ("rouge1", "rouge2", "rougeL")
MODES = ("single", "notes", "mapreduce", "truncate", "passages", "auto")
EXTRACTIVE = ("lead", "textrank")  # configurations without the model (app.summarize.extractive)
CACHES = ("sepllm", "window", "full")
CACHE_FREE_MODES = {"mapreduce", "truncate"}  # they use full caches over pieces that fit
SHARED_WHEN_SHORT = {"single", "notes", "mapreduce", "truncate"}  # one pass when nothing is evicted
FULL_MARGIN = 600  # prompt and answer tokens a full cache needs besides the document


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pairs", type=Path, metavar="PAIRS.jsonl", help="pairs file (id, document|dialogue, "
                        "references)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate the first N rows")
    parser.add_argument("--spread", action="store_true", help="with --limit: take N rows spread evenly over "
                        "the file instead of the first N")
    parser.add_argument("--ids", default=None, metavar="ID,...", help="evaluate only these row ids")
    parser.add_argument("--mode", default="single", help="mode or comma list: single,notes,mapreduce,truncate")
    parser.add_argument("--cache", default="sepllm", help="cache policy or comma list: sepllm,window,full")
    parser.add_argument("--configs", default=None, metavar="MODE:CACHE,...",
                        help="explicit list of runs, e.g. passages,single:sepllm,single:full,mapreduce,lead,textrank "
                             "(lead and textrank: extractive baselines without the model)")
    parser.add_argument("--extractive-length", default="config", choices=("config", "references"),
                        help="words of lead/textrank per row: config = the word count of the first model "
                             "configuration's summary of that row (default); references = the references' mean")
    parser.add_argument("--length", default="auto", choices=("auto", "short", "medium", "long"),
                        help="summary length; auto: short for references under 60 words, else medium")
    parser.add_argument("--style", default="paragraphs", choices=("bullets", "paragraphs", "structured"))
    parser.add_argument("--model", default=None, help="model name or path (default: the embedded model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quant", default="none", choices=("none", "8bit", "4bit"))
    parser.add_argument("--max-entries", type=int, default=None, metavar="N", help="cache budget (entries)")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N", help="tokens per forward")
    parser.add_argument("--kv-quant", default="none", choices=("none", "int8"), help="how the cache stores entries")
    parser.add_argument("--decode-weights", default="auto", choices=("auto", "bf16", "int4"),
                        help="the weights the CPU decode step reads (auto: as the app)")
    parser.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                        help="cap on summary tokens (default: set by the length)")
    parser.add_argument("--format", default="text", choices=("text", "json"))
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="also write the JSON here")


def read_pairs(path: Path, limit: int | None = None, spread: bool = False,
               ids: str | None = None) -> list[dict[str, Any]]:
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines]
    except (OSError, json.JSONDecodeError) as exc:
        raise DocumentError(f"{path} cannot be read as JSON lines ({exc}): check the path") from exc
    for row in rows:
        if not row.get("references") or not (row.get("document") or row.get("dialogue")):
            raise DocumentError(f"{path}: row {row.get('id', '?')} lacks references or document/dialogue")
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        by_id = {row.get("id"): row for row in rows}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise DocumentError(f"{path} has no rows with id {', '.join(missing)}: check --ids")
        rows = [by_id[i] for i in wanted]
    if limit is not None and limit < len(rows):
        if spread and limit > 0:
            step = len(rows) / limit
            rows = [rows[int(i * step)] for i in range(limit)]
        else:
            rows = rows[:limit]
    return rows


def parse_configs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(mode, cache) pairs to run; map-reduce and truncate run once whatever the cache list."""
    explicit = getattr(args, "configs", None)
    if explicit:
        pairs = []
        for item in explicit.split(","):
            mode, _, cache = item.strip().partition(":")
            pairs.append((mode, cache or "sepllm"))
    else:
        modes = [m.strip() for m in str(getattr(args, "mode", None) or "single").split(",")]
        caches = [c.strip() for c in str(getattr(args, "cache", None) or "sepllm").split(",")]
        pairs = [(mode, cache) for mode in modes for cache in caches
                 if not (mode == "notes" and cache == "full")]
    result: list[tuple[str, str]] = []
    for mode, cache in pairs:
        if mode in EXTRACTIVE:
            if (mode, "none") not in result:
                result.append((mode, "none"))
            continue
        if mode not in MODES or cache not in CACHES:
            raise DocumentError(f"unknown configuration {mode}:{cache}: modes {', '.join(MODES)}; "
                                f"caches {', '.join(CACHES)}; extractive {', '.join(EXTRACTIVE)}")
        if mode in CACHE_FREE_MODES:
            cache = "sepllm"  # only its budget matters (chunk size of map-reduce)
        if (mode, cache) not in result:
            result.append((mode, cache))
    return result


def score(summary: str, references: list[str], scorer) -> dict[str, float]:
    """Best F-measure over the references, per metric."""
    best = dict.fromkeys(METRICS, 0.0)
    for reference in references:
        for metric, value in scorer.score(reference, summary).items():
            best[metric] = max(best[metric], value.fmeasure)
    return best


def _length_for(row: dict[str, Any], requested: str) -> str:
    if requested != "auto":
        return requested
    words = row.get("ref_words_avg") or statistics.mean(len(r.split()) for r in row["references"])
    return "short" if words < 60 else "medium"


def evaluate(rows: list[dict[str, Any]], configs: list[tuple[str, str]], args: argparse.Namespace,
             loaded=None, log=sys.stderr, on_config=None) -> dict[str, Any]:
    """Run every configuration over ``rows``; returns the JSON report.

    ``on_config(report)`` is called after each configuration (the partial report), so a long
    run keeps what it measured.
    """
    from rouge_score import rouge_scorer

    from app import request as run_request
    from app.summarize.pipeline import load_model_for, summarize_text

    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    values = {"model": getattr(args, "model", None), "device": getattr(args, "device", "auto"),
              "quant": getattr(args, "quant", "none"), "style": getattr(args, "style", "paragraphs"),
              "cache_max_entries": getattr(args, "max_entries", None), "chunk_size": getattr(args, "chunk_size", None),
              "kv_quant": getattr(args, "kv_quant", "none"), "decode_weights": getattr(args, "decode_weights", "auto")}
    base = run_request.from_settings([], values, max_new_tokens=getattr(args, "max_new_tokens", None))
    if loaded is None:
        loaded = load_model_for(base)
    context = int(getattr(loaded.model.config, "max_position_embeddings", 0) or 0)
    bound = run_request.cache_config(base).max_entries
    cancel = threading.Event()
    ran: dict[tuple[str, str], dict[str, Any]] = {}  # results of computations that configurations share
    report: dict[str, Any] = {"pairs": str(args.pairs), "model": loaded.name,
                              "model_variant": getattr(loaded, "variant", "base"), "device": str(loaded.device),
                              "decode_weights": loaded.decode_weights, "rows_total": len(rows), "configs": []}
    model_configs = [c for c in configs if c[0] not in EXTRACTIVE]
    extractive_configs = [c for c in configs if c[0] in EXTRACTIVE]
    for mode, cache in model_configs:
        results = []
        for index, row in enumerate(rows, start=1):
            request = dataclasses.replace(base, mode=mode, cache=cache, focus=row.get("query"),
                                          length=_length_for(row, getattr(args, "length", "auto")))
            text = row.get("document") or row.get("dialogue")
            genre = row.get("genre") or ("dialogue" if row.get("dialogue") else None)
            row_id = row.get("id", str(index))
            tokens = len(loaded.tokenizer(text, add_special_tokens=False).input_ids)
            if cache == "full" and mode == "single" and context and tokens + FULL_MARGIN > context:
                results.append({"id": row_id, "input_tokens": tokens, "skipped": "beyond the model's context"})
                continue
            # A document that fits well inside the budget is never evicted, cut or split: every
            # configuration then runs the same single pass, so it runs once and is reused.
            short = tokens <= min(bound, request.notes_every) // 2 and mode in SHARED_WHEN_SHORT
            key = (row_id, "whole") if short else (row_id, f"{mode}:{cache}")
            if key in ran:
                results.append({**ran[key], "same_as": ran[key]["config"]})
                continue
            result: dict[str, Any] = {"id": row_id, "config": f"{mode}:{cache}"}
            for event in summarize_text(text, loaded, request, cancel, path=row_id, genre=genre):
                if isinstance(event, SummaryDone):
                    result.update(_row_result(event, scorer, row["references"]))
                elif isinstance(event, Failed):
                    result["error"] = event.message
            ran[key] = result
            results.append(result)
            print(f"{mode}/{cache} {index}/{len(rows)} {row_id}: "
                  f"R-L {result.get('rougeL', 0):.3f} in {result.get('seconds', 0):.0f} s", file=log, flush=True)
        report["configs"].append(_summary_of(mode, cache, results))
        if on_config is not None:
            on_config(report)
    lengths = _extractive_lengths(rows, report["configs"], getattr(args, "extractive_length", "config"))
    report["extractive_length"] = (
        "words of the references' mean" if getattr(args, "extractive_length", "config") == "references"
        or not report["configs"] else
        f"per row, the word count of {report['configs'][0]['mode']}:{report['configs'][0]['cache']}'s summary")
    for mode, _ in extractive_configs:
        results = [_extractive_row(mode, row, lengths, scorer, index) for index, row in enumerate(rows, start=1)]
        report["configs"].append(_summary_of(mode, "none", results))
        if on_config is not None:
            on_config(report)
    _mark_full_subset(report["configs"])
    first = report["configs"][0] if report["configs"] else {}
    report.update({metric: first.get(metric, 0.0) for metric in METRICS})
    report["rows"] = first.get("rows", [])
    return report


def _extractive_lengths(rows: list[dict[str, Any]], configs: list[dict[str, Any]], rule: str) -> dict[str, int]:
    """Words per row for the extractive baselines: the first model configuration's summary, or the
    references' mean (also where that configuration has no summary of the row)."""
    from app.summarize.extractive import words_of

    by_id = {r["id"]: r for r in configs[0]["rows"]} if configs and rule == "config" else {}
    lengths = {}
    for index, row in enumerate(rows, start=1):
        row_id = row.get("id", str(index))
        summary = by_id.get(row_id, {}).get("summary")
        if summary:
            lengths[row_id] = max(1, words_of(summary))
        else:
            lengths[row_id] = max(1, round(statistics.mean(len(r.split()) for r in row["references"])))
    return lengths


def _extractive_row(name: str, row: dict[str, Any], lengths: dict[str, int], scorer, index: int) -> dict[str, Any]:
    import time

    from app.summarize.extractive import baseline

    row_id = row.get("id", str(index))
    text = row.get("document") or row.get("dialogue")
    started = time.perf_counter()
    summary = baseline(name, text, lengths[row_id])
    return {"id": row_id, "config": f"{name}:none", **score(summary, row["references"], scorer),
            **_checks(summary, text), "seconds": round(time.perf_counter() - started, 3), "kv_bytes_peak": 0,
            "kv_bytes_full_equivalent": 0, "input_tokens": 0, "output_tokens": 0, "mode": name,
            "stopped_by": "extractive", "retried": False, "fallback": False, "prompt_echo": False,
            "empty": is_empty_summary(summary), "summary": summary}


def _checks(summary: str, text: str) -> dict[str, Any]:
    """grounded_share and numbers_supported of a summary against its plain source text (evidence module)."""
    try:
        from app.ingest.source_map import SourceMap
        from app.summarize import evidence
    except ImportError:  # the evidence module is not in this build
        return {}
    stats = evidence.check(summary, SourceMap.from_text(text)).stats()
    return {"grounded_share": stats.get("grounded_share"), "numbers_supported": stats.get("numbers_supported")}


def _row_result(event: SummaryDone, scorer, references: list[str]) -> dict[str, Any]:
    stats = event.stats
    flags = stats.get("quality_flags") or []
    return {**score(event.summary, references, scorer),
            "grounded_share": stats.get("grounded_share"), "numbers_supported": stats.get("numbers_supported"),
            "fallback": bool(stats.get("fallback")),
            "prompt_echo": any(flag.get("kind") == "prompt_echo" for flag in flags),
            "seconds": stats.get("seconds", 0.0), "kv_bytes_peak": stats.get("kv_bytes_peak", 0),
            "kv_bytes_full_equivalent": stats.get("kv_bytes_full_equivalent", 0),
            "input_tokens": stats.get("input_tokens", 0), "output_tokens": stats.get("output_tokens", 0),
            "mode": stats.get("mode"), "stopped_by": stats.get("stopped_by"), "retried": stats.get("retried"),
            "empty": is_empty_summary(event.summary), "summary": event.summary}


def _mean(values: list[float]) -> float:
    return round(statistics.mean(values), 4) if values else 0.0


def _summary_of(mode: str, cache: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in results if "error" not in r and "rougeL" in r]
    label = {"mapreduce": "full, per chunk", "truncate": "full, prefix"}.get(mode, cache)
    summary: dict[str, Any] = {"mode": mode, "cache": label,
                               "rows_evaluated": len(scored), "errors": sum(1 for r in results if "error" in r),
                               "skipped": sum(1 for r in results if "skipped" in r)}
    for metric in METRICS:
        summary[metric] = _mean([r[metric] for r in scored])
    summary["seconds_mean"] = round(statistics.mean([r["seconds"] for r in scored]), 2) if scored else 0.0
    summary["kv_bytes_peak_mean"] = int(statistics.mean([r["kv_bytes_peak"] for r in scored])) if scored else 0
    summary["kv_bytes_full_equivalent_mean"] = (
        int(statistics.mean([r["kv_bytes_full_equivalent"] for r in scored])) if scored else 0)
    for check in ("grounded_share", "numbers_supported"):
        values = [r[check] for r in scored if r.get(check) is not None]
        summary[check] = _mean(values) if values else None
    summary["prompt_echoes"] = sum(1 for r in scored if r.get("prompt_echo"))
    summary["fallbacks"] = sum(1 for r in scored if r.get("fallback"))
    summary["empty"] = sum(1 for r in scored if r["empty"])
    summary["repetition_stops"] = sum(1 for r in scored if r["stopped_by"] == "repetition")
    summary["words_mean"] = round(statistics.mean([len(r["summary"].split()) for r in scored]), 1) if scored else 0.0
    summary["rows"] = results
    return summary


def _mark_full_subset(configs: list[dict[str, Any]]) -> None:
    """ROUGE-L of every configuration over the rows where the full cache fits the context."""
    full = next((c for c in configs if c["mode"] == "single" and c["cache"] == "full"), None)
    if full is None:
        return
    fitting = {r["id"] for r in full["rows"] if "rougeL" in r}
    for config in configs:
        values = [r["rougeL"] for r in config["rows"] if r["id"] in fitting and "rougeL" in r]
        config["rougeL_where_full_fits"] = _mean(values)
        config["rows_where_full_fits"] = len(values)


def format_table(report: dict[str, Any]) -> str:
    lines = ["| mode | cache | rows | words | ROUGE-1 | ROUGE-2 | ROUGE-L | R-L where full fits | grounded | "
             "numbers supported | prompt echoes | fallbacks | KV peak MB | full-cache KV MB | s/doc | empty | "
             "loops stopped |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in report["configs"]:
        fits = c.get("rougeL_where_full_fits")
        fits_text = "" if fits is None else f"{fits:.4f} ({c['rows_where_full_fits']})"
        checks = " | ".join("" if c.get(k) is None else f"{c[k]:.3f}" for k in ("grounded_share", "numbers_supported"))
        lines.append(
            f"| {c['mode']} | {c['cache']} | {c['rows_evaluated']} | {c.get('words_mean', 0):.0f} | "
            f"{c['rouge1']:.4f} | {c['rouge2']:.4f} | {c['rougeL']:.4f} | {fits_text} | {checks} | "
            f"{c.get('prompt_echoes', 0)} | {c.get('fallbacks', 0)} | "
            f"{c['kv_bytes_peak_mean'] / 1e6:.1f} | {c['kv_bytes_full_equivalent_mean'] / 1e6:.1f} | "
            f"{c['seconds_mean']:.1f} | {c['empty']} | {c['repetition_stops']} |")
    if report.get("extractive_length") and any(c["mode"] in EXTRACTIVE for c in report["configs"]):
        lines.append(f"\nlead/textrank length: {report['extractive_length']}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sepsum eval rouge``; prints a table or the JSON report."""
    pairs = Path(getattr(args, "pairs", None) or getattr(args, "path", None) or args.PAIRS)
    args.pairs = pairs
    rows = read_pairs(pairs, getattr(args, "limit", None), getattr(args, "spread", False),
                      getattr(args, "ids", None))
    output = getattr(args, "output", None)

    def save(partial: dict[str, Any]) -> None:
        if output:
            Path(output).write_text(json.dumps(partial, indent=2, ensure_ascii=False), encoding="utf-8")

    report = evaluate(rows, parse_configs(args), args, on_config=save)
    save(report)
    if getattr(args, "format", "text") == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        sys.stdout.write(format_table(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    from app import offline

    offline.enforce()
    parser = argparse.ArgumentParser(prog="python -m app.summarize.rouge_eval", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
