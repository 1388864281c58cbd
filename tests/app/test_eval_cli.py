"""``sepsum eval``: recall and perplexity through the CLI on a real book, and the rouge hand-off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser, main

MOBY = "books/gutenberg_2701_Moby_Dick_Melville.txt"


def test_recall_json_lists_each_fact(installed_home, shared_data, capsys):
    code = main(["eval", "recall", str(shared_data / MOBY), "--tokens", "600", "--facts", "3",
                 "--cache", "full", "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cache"] == "full" and result["tokens"] == pytest.approx(600, abs=20)
    assert [f["depth"] for f in result["facts"]] == [0.05, 0.5, 0.95]
    for fact in result["facts"]:
        assert 1 <= fact["rank"] <= 10 and fact["logprob"] < 0 and fact["position"] >= 0
    assert {"recall_early", "recall_late", "mean_rank_early", "mean_rank_late"} <= result.keys()
    assert result["cache_config"]["policy"] == "full"
    assert result["kv_bytes_peak"] == result["kv_bytes_full_equivalent"] > 0


def test_recall_with_made_up_values_and_an_unfilled_sepllm_cache(installed_home, shared_data, capsys):
    from sepllm_core.recall import CITIES, CODE_WORDS

    code = main(["eval", "recall", str(shared_data / MOBY), "--tokens", "900", "--facts", "3", "--budget", "400",
                 "--separators", "96", "--local", "64", "--chunk-size", "128", "--no-fill", "--open-values",
                 "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cache_config"]["fill_recent"] is False
    assert not {f["value"] for f in result["facts"]} & {*CODE_WORDS, *CITIES}
    assert all(len(f["value"]) != 4 or not f["value"].isdigit() for f in result["facts"])
    # peak entries: 4 sinks + at most 96 separators + 64 newest, plus one chunk read before pruning
    assert result["kv_entries"] <= 4 + 96 + 64 + 128 < 400


def test_recall_with_the_shipped_adapter_reads_with_its_positions(installed_home, shared_data, capsys):
    """The adapter in resources/ loads by name; its cache renumbers positions unless asked otherwise."""
    from app.engine.default_model import ADAPTER_NAME

    argv = ["eval", "recall", str(shared_data / MOBY), "--tokens", "700", "--facts", "2", "--budget", "256",
            "--chunk-size", "128", "--model", ADAPTER_NAME, "--format", "json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["cache_config"]["positions"] == "shifted"
    assert main([*argv, "--positions", "original"]) == 0
    assert json.loads(capsys.readouterr().out)["cache_config"]["positions"] == "original"


def test_recall_text_without_document(installed_home, shared_data, capsys):
    code = main(["eval", "recall", str(shared_data / MOBY), "--tokens", "300", "--facts", "2",
                 "--cache", "none", "--seeds", "1,2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "cache none, seeds [1, 2]" in out and "recall early" in out and "chance 1 in 10" in out
    assert out.count("\n") >= 6  # header + 4 facts (2 per seed) + summary lines


def test_recall_rejects_bad_seeds_and_missing_file(installed_home, tmp_path, capsys):
    with pytest.raises(SystemExit, match="--seeds"):
        main(["eval", "recall", str(tmp_path / "x.txt"), "--seeds", "a,b"])
    with pytest.raises(SystemExit, match="--facts must be 1 to 23"):
        main(["eval", "recall", str(tmp_path / "x.txt"), "--facts", "30"])
    assert main(["eval", "recall", str(tmp_path / "missing.txt")]) == 3
    assert "missing.txt cannot be read" in capsys.readouterr().err


def test_perplexity_json(installed_home, shared_data, capsys):
    code = main(["eval", "perplexity", str(shared_data / MOBY), "--tokens", "512", "--cache", "window",
                 "--budget", "256", "--chunk-size", "128", "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens"] == 512 and result["tokens_scored"] == 511
    assert 5 < result["ppl"] < 200
    assert result["kv_bytes_peak"] < result["kv_bytes_full_equivalent"]
    assert {"prefill_tokens_per_s", "seconds", "kv_entries_peak"} <= result.keys()


def test_installed_command_measures_perplexity_outside_the_checkout(installed_home, shared_data, tmp_path):
    """The console script, run from another folder, needs nothing but the installed packages."""
    script = Path(sys.executable).with_name("sepsum")
    env = {**os.environ, "SEPSUM_HOME": str(installed_home)}
    env.pop("PYTHONPATH", None)
    run = subprocess.run([str(script), "eval", "perplexity", str(shared_data / MOBY), "--tokens", "300",
                          "--cache", "window", "--budget", "128", "--chunk-size", "64", "--format", "json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["tokens"] == 300 and result["tokens_scored"] == 299 and 5 < result["ppl"] < 200


def test_perplexity_with_an_int8_cache(installed_home, shared_data, capsys):
    """Same tokens, same kept set: int8 entries take 0.52x the bytes and barely move the perplexity."""
    results = {}
    for quant in ("none", "int8"):
        assert main(["eval", "perplexity", str(shared_data / MOBY), "--tokens", "512", "--cache", "sepllm",
                     "--budget", "256", "--chunk-size", "128", "--kv-quant", quant, "--format", "json"]) == 0
        results[quant] = json.loads(capsys.readouterr().out)
    plain, int8 = results["none"], results["int8"]
    assert int8["cache_config"]["kv_quant"] == "int8" and int8["kv_entries_peak"] == plain["kv_entries_peak"]
    assert int8["kv_bytes_peak"] * 128 == plain["kv_bytes_peak"] * 66  # head_dim 64: 64 codes + a bf16 scale
    assert int8["kv_bytes_full_equivalent"] == plain["kv_bytes_full_equivalent"]
    assert int8["ppl"] == pytest.approx(plain["ppl"], rel=0.01)


def test_rouge_parser_takes_the_pipeline_options():
    args = build_parser().parse_args(["eval", "rouge", "pairs.jsonl", "--limit", "3", "--mode", "mapreduce",
                                      "--cache", "window", "--length", "short", "--model", "m",
                                      "--format", "json"])
    assert (args.limit, args.mode, args.cache, args.length, args.model, args.format) == (
        3, "mapreduce", "window", "short", "m", "json")
    assert str(args.pairs) == "pairs.jsonl"


def test_rouge_on_a_missing_pairs_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["eval", "rouge", str(missing), "--limit", "2"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.jsonl" in err
