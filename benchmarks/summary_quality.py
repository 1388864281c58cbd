"""Key passages vs lead vs TextRank on the dev sets: read each document once, score many selection rules.

``measure`` runs the product's ``passages`` mode (app.summarize.pipeline.summarize_text) on each row
and keeps its raw reading (entry attention per layer and head, token ends) in a cache folder;
``score`` turns the cached readings into passages under a grid of rules, on the TUNE rows only,
picks the best rule there, and scores it once on the REPORT rows, with lead and TextRank cut to the
word count of each passages summary. Split rule: a row is TUNE when the SHA-1 of its id is even.

    python -m benchmarks.summary_quality measure --cache-dir DIR [--max-tokens N] [--dialogues N]
    python -m benchmarks.summary_quality score --cache-dir DIR --output docs/benchmarks/summary_quality.json
    python -m benchmarks.summary_quality grounding --output docs/benchmarks/reference_grounding.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "summaries"
SETS = {"long": DATA / "long_doc_dev.jsonl", "dialogue": DATA / "dialogue_dev.jsonl"}
LENGTH = {"long": "medium", "dialogue": "short"}


def split_of(row_id: str) -> str:
    """TUNE when the SHA-1 of the id is even, else REPORT."""
    return "tune" if int(hashlib.sha1(row_id.encode()).hexdigest(), 16) % 2 == 0 else "report"


def rows_of(name: str, dialogues: int) -> list[dict[str, Any]]:
    from app.summarize.rouge_eval import read_pairs

    if name == "dialogue":
        return read_pairs(SETS[name], limit=dialogues, spread=True)
    return read_pairs(SETS[name])


def measure(args: argparse.Namespace) -> None:
    """Read every selected row in the passages mode; save its reading as ``<id>.npz`` + ``<id>.json``."""
    from app.summarize.events import Failed, KeyPassages, SummaryDone, SummaryRequest
    from app.summarize.pipeline import load_model_for, summarize_text

    out = Path(args.cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.instruction:  # another instruction after the document: what the passages' attention is measured from
        from app.summarize import prompts

        original = prompts.instruction

        def instruction(*given: Any, after: bool = False, **named: Any) -> str:
            return str(args.instruction) if after else original(*given, after=after, **named)

        prompts.instruction = instruction  # type: ignore[assignment]
    request = SummaryRequest(paths=[], mode="passages", style="paragraphs")
    loaded = load_model_for(request)
    todo = []
    for name in ("dialogue", "long"):
        for row in rows_of(name, args.dialogues):
            text = row.get("document") or row.get("dialogue")
            tokens = len(loaded.tokenizer(text, add_special_tokens=False).input_ids)
            if tokens > args.max_tokens:
                print(f"skip {row['id']}: {tokens} tokens > {args.max_tokens}", file=sys.stderr)
                continue
            todo.append((split_of(row["id"]) != "tune", name, tokens, row))
    todo.sort(key=lambda item: (item[0], item[1] != "dialogue", item[2]))  # TUNE first, short first
    if args.first:  # these ids first, in this order (a time-capped run measures what matters first)
        first = args.first.split(",")
        todo.sort(key=lambda item: first.index(item[3]["id"]) if item[3]["id"] in first else len(first))
    for _, name, tokens, row in todo:
        target = out / f"{row['id']}.npz"
        if target.exists():
            continue
        text = row.get("document") or row.get("dialogue")
        request = replace(request, length=LENGTH[name])
        genre = row.get("genre") or ("dialogue" if row.get("dialogue") else None)
        started = time.perf_counter()
        measured = stats = None
        for event in summarize_text(text, loaded, request, threading.Event(), path=row["id"], genre=genre):
            if isinstance(event, KeyPassages):
                measured = event.measured
            elif isinstance(event, SummaryDone):
                stats = event.stats
            elif isinstance(event, Failed):
                print(f"{row['id']} failed: {event.message}", file=sys.stderr)
        if measured is None:
            continue
        np.savez_compressed(target, positions=measured.positions, mass=measured.mass.astype(np.float16),
                            token_ends=np.asarray(measured.token_ends, dtype=np.int64))
        meta = {"id": row["id"], "set": name, "split": split_of(row["id"]), "tokens": tokens,
                "doc_offset": measured.doc_offset, "layers": list(measured.layers),
                "policy": measured.cache_policy, "probe_step": measured.extra.get("probe_step"), "seconds": round(time.perf_counter() - started, 2),
                "stats": {k: stats.get(k) for k in ("seconds", "kv_bytes_peak", "kv_entries_peak")} if stats else {}}
        (out / f"{row['id']}.json").write_text(json.dumps(meta))
        print(f"{name} {row['id']} {tokens} tok {meta['policy']} {meta['seconds']:.0f} s", file=sys.stderr, flush=True)


def load_reading(cache_dir: Path, row: dict[str, Any]):
    from app.summarize.passages import Measured

    meta = json.loads((cache_dir / f"{row['id']}.json").read_text())
    arrays = np.load(cache_dir / f"{row['id']}.npz")
    measured = Measured(text=row.get("document") or row.get("dialogue"), token_ends=arrays["token_ends"].tolist(),
                        doc_offset=meta["doc_offset"], positions=arrays["positions"],
                        mass=arrays["mass"].astype(np.float32), layers=tuple(meta["layers"]),
                        cache_policy=meta["policy"], extra={"probe_step": meta.get("probe_step")})
    return meta, measured


GRID = {
    "layers": [(10, 29), (0, 29), (5, 20)],
    "norm": [0.0, 1.0],
    "units": ["sentences", "lines"],
    "redundancy": [0.5],
    "min_words": [4, 8],
    "skip_first": [0],
    "debias": [False, True],
}
DIALOGUE_WORDS = [30]  # the "short" length's budget (passages.WORDS): the user's setting, not a tuned knob


def score(args: argparse.Namespace) -> None:
    from rouge_score import rouge_scorer

    from app.summarize import extractive
    from app.summarize.candidates import Units
    from app.summarize.passages import WORDS, Rule, as_summary, passages_of
    from app.summarize.rouge_eval import score as rouge

    cache_dir = Path(args.cache_dir)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    readings: dict[str, list[tuple[dict[str, Any], dict[str, Any], Any]]] = {"long": [], "dialogue": []}
    for name in ("long", "dialogue"):
        for row in rows_of(name, args.dialogues):
            if (cache_dir / f"{row['id']}.json").exists():
                meta, measured = load_reading(cache_dir, row)
                readings[name].append((row, meta, measured))
    words = {"long": WORDS["medium"], "dialogue": WORDS["short"]}

    prepared: dict[tuple[str, str], Units] = {}

    def units_of(row_id: str, measured, kind: str) -> Units:
        if (row_id, kind) not in prepared:
            prepared[(row_id, kind)] = Units.of(measured.text, measured.token_ends, kind)
        return prepared[(row_id, kind)]

    def run_rule(rule: Rule, items, budget: int, baselines: bool = False) -> dict[str, Any]:
        rows = []
        for row, meta, measured in items:
            summary = as_summary(passages_of(measured, budget, rule, units=units_of(row["id"], measured, rule.units)))
            length = extractive.words_of(summary)
            result = {"id": row["id"], "tokens": meta["tokens"], "policy": meta["policy"], "words": length,
                      "passages": rouge(summary, row["references"], scorer)["rougeL"]}
            if baselines:
                for base in extractive.BASELINES:
                    text = extractive.baseline(base, measured.text, length)
                    result[base] = rouge(text, row["references"], scorer)["rougeL"]
                result["summary"] = summary
            rows.append(result)
        return {"rougeL": round(statistics.mean(r["passages"] for r in rows), 4) if rows else 0.0, "rows": rows}

    report: dict[str, Any] = {"split_rule": "TUNE: SHA-1(id) even; REPORT: odd", "grid": GRID, "sets": {}}
    keys = list(GRID)
    for name, items in readings.items():
        tune = [item for item in items if item[1]["split"] == "tune"]
        held = [item for item in items if item[1]["split"] == "report"]
        budgets = [words[name]] if name == "long" else DIALOGUE_WORDS
        results = []
        if args.fixed:  # the rule chosen by an earlier TUNE run: no grid
            chosen = json.loads(Path(args.fixed).read_text())["sets"][name]
            rule = Rule(**{**chosen["rule"], "layers": tuple(chosen["rule"]["layers"])})
            results.append((chosen["top_rules_on_tune"][0]["rougeL"], chosen["words"], rule))
        for budget in budgets if not args.fixed else []:
            for values in itertools.product(*(GRID[k] for k in keys)):
                rule = Rule(**dict(zip(keys, values, strict=True)))
                results.append((run_rule(rule, tune, budget)["rougeL"], budget, rule))
        results.sort(key=lambda r: -r[0])
        best_score, best_budget, best_rule = results[0]
        print(f"{name}: {len(tune)} TUNE rows, best {best_score:.4f} at {best_budget} words: {best_rule}", file=sys.stderr)
        for value, budget, rule in results[:8]:
            print(f"  {value:.4f} {budget} {rule}", file=sys.stderr)
        entry = {"tune_rows": len(tune), "report_rows": len(held), "words": best_budget, "rule": asdict(best_rule),
                 "top_rules_on_tune": [{"rougeL": v, "words": b, "rule": asdict(r)} for v, b, r in results[:10]],
                 "rules_tried": len(results),
                 "author_rule_on_tune": run_rule(Rule(layers=(10, 29), norm=0.0, units="sentences", redundancy=1.0,
                                                      min_words=0, skip_first=0), tune, best_budget)["rougeL"]}
        for split, subset in (("tune", tune), ("report", held)):
            if split == "report" and not args.report:
                continue
            scored = run_rule(best_rule, subset, best_budget, baselines=True)
            rows = scored["rows"]
            summary = {"rows": len(rows)}
            for column in ("passages", *extractive.BASELINES):
                summary[column] = round(statistics.mean(r[column] for r in rows), 4) if rows else 0.0
            beyond = [r for r in rows if r["tokens"] > 8192]
            if beyond:
                summary["beyond_context"] = {"rows": len(beyond), **{
                    c: round(statistics.mean(r[c] for r in beyond), 4) for c in ("passages", *extractive.BASELINES)}}
            entry[split] = {"summary": summary, "rows": rows}
            print(f"{name} {split}: {summary}", file=sys.stderr)
        entry["model_summaries"] = compare_model_summaries(items, best_rule, scorer, units_of)
        report["sets"][name] = entry
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1, ensure_ascii=False))


MODEL_SUMMARIES = ("rouge_long_doc.json", "rouge_long_doc_more.json", "rouge_long_doc_beyond_context.json",
                   "rouge_dialogue.json")
"""Earlier `sepsum eval rouge` reports (docs/benchmarks) whose summaries the model wrote (budget 1024)."""


def compare_model_summaries(items, rule, scorer, units_of) -> dict[str, Any]:
    """Each model-written summary of a measured row against passages, lead and TextRank cut to its length."""
    from app.summarize import extractive
    from app.summarize.passages import as_summary, passages_of
    from app.summarize.rouge_eval import score as rouge

    by_id = {row["id"]: (row, meta, measured) for row, meta, measured in items}
    folder = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
    result: dict[str, Any] = {}
    for file in MODEL_SUMMARIES:
        report = json.loads((folder / file).read_text())
        for config in report["configs"]:
            label = f"{config['mode']}:{config['cache']}"
            for old in config["rows"]:
                if old["id"] not in by_id or not old.get("summary"):
                    continue
                row, meta, measured = by_id[old["id"]]
                length = extractive.words_of(old["summary"])
                picked = as_summary(passages_of(measured, length, rule, units=units_of(row["id"], measured, rule.units)))
                scores = {"model": rouge(old["summary"], row["references"], scorer)["rougeL"],
                          "passages": rouge(picked, row["references"], scorer)["rougeL"]}
                for base in extractive.BASELINES:
                    scores[base] = rouge(extractive.baseline(base, measured.text, length), row["references"],
                                         scorer)["rougeL"]
                entry = result.setdefault(label, {"tune": [], "report": []})
                entry[meta["split"]].append({"id": old["id"], "words": length, **scores})
    summary = {}
    for label, splits in result.items():
        summary[label] = {}
        for split, rows in splits.items():
            if rows:
                summary[label][split] = {"rows": len(rows), **{
                    k: round(statistics.mean(r[k] for r in rows), 4) for k in ("model", "passages", *extractive.BASELINES)}}
        summary[label]["per_row"] = splits
    return summary


def grounding(args: argparse.Namespace) -> None:
    """How much of a human reference summary the evidence check finds in its document: the grounded share
    (and numbers supported) of every reference of both dev sets, quantiles per set and split. A rule that
    replaced a model summary below some grounded share would replace human summaries below it too."""
    from app.ingest.source_map import SourceMap
    from app.summarize import evidence

    result: dict[str, Any] = {}
    for name in ("long", "dialogue"):
        for row in rows_of(name, 10**6):
            source = SourceMap.from_text(row.get("document") or row.get("dialogue"))
            for reference in row["references"]:
                report = evidence.check(reference, source, "en")
                if sum(item.checked for item in report.sentences) < 3:
                    continue  # as in the product: too few judged sentences say nothing
                entry = result.setdefault(f"{name}/{split_of(row['id'])}", {"grounded": [], "numbers": []})
                entry["grounded"].append(report.grounded_share)
                if report.numbers_supported is not None:
                    entry["numbers"].append(report.numbers_supported)
    summary = {}
    for key, entry in sorted(result.items()):
        values = sorted(entry["grounded"])
        summary[key] = {"references": len(values), **{
            f"p{q}": round(values[int(q / 100 * (len(values) - 1))], 3) for q in (1, 5, 10, 25, 50)},
            "with_numbers": len(entry["numbers"]),
            "numbers_supported_mean": round(statistics.mean(entry["numbers"]), 3) if entry["numbers"] else None}
        print(key, summary[key], file=sys.stderr)
    if args.output:
        Path(args.output).write_text(json.dumps(summary, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.summary_quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("measure", "score", "grounding"))
    parser.add_argument("--cache-dir", type=Path, help="readings folder (measure, score)")
    parser.add_argument("--max-tokens", type=int, default=20000, help="skip longer documents (measure)")
    parser.add_argument("--dialogues", type=int, default=100, help="dialogue rows, spread over the file")
    parser.add_argument("--first", default="", help="measure: comma list of row ids to read first, in order")
    parser.add_argument("--instruction", default="",
                        help="measure: this instruction after the document instead of the summary prompt's")
    parser.add_argument("--fixed", type=Path, default=None,
                        help="score: take the rule of this earlier TUNE run's JSON instead of searching the grid")
    parser.add_argument("--report", action="store_true", help="score: also score the chosen rule on REPORT")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    from app import offline

    offline.enforce()
    if args.command != "grounding" and args.cache_dir is None:
        parser.error("--cache-dir is required for measure and score")
    {"measure": measure, "score": score, "grounding": grounding}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
