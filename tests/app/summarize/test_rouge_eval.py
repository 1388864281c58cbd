"""``sepsum eval rouge``: scoring against the best reference, configurations, a real 2-row run."""

import argparse
import json

import pytest

from app.summarize import extractive, rouge_eval


def test_score_takes_the_best_reference_per_metric():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(rouge_eval.METRICS), use_stemmer=True)
    best = rouge_eval.score("the board met in june", ["something else entirely", "The board met in June."],
                            scorer)
    assert best == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    none = rouge_eval.score("", ["The board met."], scorer)
    assert none == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_configurations_from_flags():
    args = argparse.Namespace(configs=None, mode="single,notes,mapreduce,truncate", cache="sepllm,full")
    assert rouge_eval.parse_configs(args) == [("single", "sepllm"), ("single", "full"), ("notes", "sepllm"),
                                              ("mapreduce", "sepllm"), ("truncate", "sepllm")]
    explicit = argparse.Namespace(configs="single:window,mapreduce", mode=None, cache=None)
    assert rouge_eval.parse_configs(explicit) == [("single", "window"), ("mapreduce", "sepllm")]
    with pytest.raises(Exception, match="unknown configuration"):
        rouge_eval.parse_configs(argparse.Namespace(configs="fast:sepllm", mode=None, cache=None))


def test_read_pairs_limit_and_spread(shared_data):
    pairs = shared_data / "summaries" / "long_doc_dev.jsonl"
    first = rouge_eval.read_pairs(pairs, limit=3)
    spread = rouge_eval.read_pairs(pairs, limit=3, spread=True)
    assert [r["id"] for r in first] == ["qmsum_test_0", "qmsum_test_1", "qmsum_test_2"]
    assert len(spread) == 3 and any(r["id"].startswith("squality") for r in spread)


def test_eval_rouge_on_two_dialogues(installed_home, shared_data, tmp_path, capsys):
    output = tmp_path / "report.json"
    code = rouge_eval.main([str(shared_data / "summaries" / "dialogue_dev.jsonl"), "--limit", "2",
                            "--mode", "single", "--cache", "sepllm", "--max-new-tokens", "24",
                            "--format", "json", "--output", str(output)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(output.read_text())
    assert {"rouge1", "rouge2", "rougeL", "rows", "configs"} <= set(report)
    assert len(report["rows"]) == 2 and report["rows"][0]["id"] == "dialogsum_test_0"
    for row in report["rows"]:
        assert 0.0 <= row["rougeL"] <= 1.0 and row["seconds"] > 0 and row["kv_bytes_peak"] > 0
        assert row["summary"] and not row["empty"]
    config = report["configs"][0]
    assert config["rows_evaluated"] == 2 and config["rougeL"] == pytest.approx(
        sum(r["rougeL"] for r in report["rows"]) / 2, abs=1e-4)
    assert report["rouge1"] > 0.05  # the 135M model's summaries share words with the references


def test_extractive_configurations_parse():
    args = argparse.Namespace(configs="passages,lead,textrank:full,lead", mode=None, cache=None)
    assert rouge_eval.parse_configs(args) == [("passages", "sepllm"), ("lead", "none"), ("textrank", "none")]


def test_eval_passages_against_lead_and_textrank_at_equal_length(installed_home, shared_data, capsys):
    code = rouge_eval.main([str(shared_data / "summaries" / "dialogue_dev.jsonl"), "--limit", "2",
                            "--configs", "passages,lead,textrank", "--length", "short", "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    passages, lead, textrank = report["configs"]
    assert [c["mode"] for c in report["configs"]] == ["passages", "lead", "textrank"]
    assert "passages:sepllm" in report["extractive_length"]
    for row, lead_row, rank_row in zip(passages["rows"], lead["rows"], textrank["rows"], strict=True):
        words = extractive.words_of(row["summary"])
        assert 0 < words <= 40
        assert extractive.words_of(lead_row["summary"]) == extractive.words_of(rank_row["summary"]) == words
    for config in report["configs"]:
        assert config["prompt_echoes"] == 0 and config["fallbacks"] == 0 and config["rows_evaluated"] == 2
        assert config["grounded_share"] is not None and config["grounded_share"] > 0.5  # the dialogue's own lines
