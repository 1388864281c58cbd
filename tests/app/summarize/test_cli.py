"""``sepsum summarize``: JSON stats, several files with a bad one, exit codes, memory refusal, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main
from app.engine import default_model, registry

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "resources" / "sample.md"
STATS_KEYS = {"input_tokens", "output_tokens", "kv_bytes_peak", "kv_bytes_full_equivalent", "kv_entries_peak",
              "prefill_tokens_per_s", "decode_tokens_per_s", "seconds", "peak_rss_bytes", "peak_gpu_bytes",
              "model", "device", "dtype", "quant", "cache"}




def test_json_for_several_files_with_a_bad_one(installed_home, short_report, tmp_path, capsys):
    bad = tmp_path / "empty.txt"
    bad.write_text("   \n", encoding="utf-8")
    code = main(["summarize", str(short_report), str(bad), "--format", "json", "--length", "short",
                 "--max-new-tokens", "12", "--device", "cpu", "--mode", "single"])
    out, err = capsys.readouterr()
    assert code == 3  # an input problem, and the good file was still summarized
    objects = [json.loads(line) for line in out.splitlines() if line.strip()]
    good = next(o for o in objects if o["path"] == str(short_report))
    assert good["summary"] and set(good["stats"]) >= STATS_KEYS
    stats = good["stats"]
    assert stats["device"] == "cpu" and stats["quant"] == "none" and stats["cache"]["policy"] == "sepllm"
    if registry.default_name() == default_model.ADAPTER_NAME:  # the shipped adapter is merged: bf16 weights
        assert stats["model_variant"] == f"SepLLM-adapted ({default_model.ADAPTER_NAME})"
        assert stats["decode_weights"] == "bf16" and stats["cache"]["positions"] == "shifted"
    else:
        assert stats["model_variant"] == "base"
        assert stats["decode_weights"] == "int4"  # auto, and the default model is 4-bit already
    assert 0 < stats["output_tokens"] <= 12 and stats["input_tokens"] > 500
    failed = next(o for o in objects if o["path"] == str(bad))
    assert "error" in failed
    error_lines = [line for line in err.splitlines() if line.startswith("sepsum:")]
    assert len(error_lines) == 1 and "empty.txt" in error_lines[0]
    assert "Traceback" not in err
    assert "tok/s" not in err  # stderr is not a terminal: no progress line


def test_text_streams_to_stdout_and_output_dir_gets_files(installed_home, short_report, tmp_path, capsys):
    assert main(["summarize", str(short_report), "--length", "short", "--max-new-tokens", "10"]) == 0
    streamed = capsys.readouterr().out
    assert streamed.strip()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["summarize", str(short_report), "--format", "markdown", "--max-new-tokens", "10",
                 "--output", str(out_dir)]) == 0
    assert capsys.readouterr().out == ""
    written = (out_dir / f"{short_report.name}.summary.md").read_text()
    assert written.startswith("## ") and len(written) > 10


def test_int8_cache_entries_end_to_end(installed_home, short_report, capsys):
    """``--kv-quant int8`` reaches the cache: a summary streams, each held entry takes 66 bytes a head;
    ``--decode-weights bf16`` reaches the model."""
    assert main(["summarize", str(short_report), "--format", "json", "--kv-quant", "int8", "--mode", "single",
                 "--decode-weights", "bf16",
                 "--cache-max-entries", "256", "--chunk-size", "128", "--max-new-tokens", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    stats = result["stats"]
    assert result["summary"].strip() and stats["cache"]["kv_quant"] == "int8" and stats["decode_weights"] == "bf16"
    assert stats["input_tokens"] > stats["kv_entries_peak"]  # it evicted
    assert stats["kv_bytes_peak"] == stats["kv_entries_peak"] * 2 * 30 * 3 * (64 + 2)  # layers, heads, codes + scale


def test_missing_file_is_exit_3_with_one_line(installed_home, tmp_path, capsys):
    assert main(["summarize", str(tmp_path / "nope.pdf"), "--max-new-tokens", "4"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.pdf" in err[0]


def test_memory_estimate_refuses_before_loading(installed_home, short_report, monkeypatch, capsys):
    from app.engine import estimate

    monkeypatch.setattr(estimate, "free_bytes", lambda device: 50 * 1024 * 1024)
    loads = []
    monkeypatch.setattr("app.engine.models.load_model", lambda *a, **k: loads.append(1))
    assert main(["summarize", str(short_report), "--device", "cpu"]) == 5
    err = capsys.readouterr().err.strip()
    assert "needs" in err and "free" in err and "\n" not in err
    assert not loads


def test_bad_choice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summarize", "x.pdf", "--length", "endless"])
    assert exc.value.code == 2


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except (BlockingIOError, OSError):
        return b""


def test_ctrl_c_stops_and_keeps_what_was_written(installed_home, tmp_path):
    """A real process: progress on a terminal stderr, the summary streamed, Ctrl-C exits 130."""
    import pty

    env = dict(os.environ, SEPSUM_HOME=str(installed_home), PYTHONUNBUFFERED="1")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "summarize", str(SAMPLE), "--length", "long", "--mode", "single"],
        stdout=subprocess.PIPE, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    os.set_blocking(process.stdout.fileno(), False)
    os.set_blocking(master, False)
    streamed, terminal = b"", b""
    deadline = time.monotonic() + 600
    while len(streamed.split()) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        streamed += process.stdout.read() or b""
        terminal += _read_available(master)
    assert len(streamed.split()) >= 3, terminal.decode(errors="replace")
    process.send_signal(signal.SIGINT)
    stopped_at = time.monotonic()
    out, _ = process.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 10
    time.sleep(0.2)
    terminal += _read_available(master)
    os.close(master)
    text = terminal.decode(errors="replace")
    assert process.returncode == 130, text
    written = streamed + out
    # the partial summary is kept and its line ended (the incomplete SummaryDone was printed)
    assert len(written.split()) >= 3 and written.endswith(b"\n")
    assert "reading" in text and "tokens" in text and "tok/s" in text and "KV" in text  # progress on a TTY
    assert "Traceback" not in text and "stopped" in text


def test_progress_line_text():
    from app.cli.summarize_cmd import describe_progress
    from app.summarize.events import Progress

    line = describe_progress(Progress("reading", 3072, 12500, 1020.4, 9.2), kv_bytes=45_200_000)
    assert line == "reading 3,072/12,500 tokens · 1,020 tok/s · ETA 9 s · KV 45.2 MB"
