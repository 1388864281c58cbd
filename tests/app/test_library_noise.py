"""Library warnings a user can do nothing about stay off the terminal; every other warning still shows."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from app import library_noise

REPO = Path(__file__).resolve().parents[2]


def test_only_the_known_messages_are_dropped(caplog):
    library_noise.silence()
    library_noise.silence()  # idempotent: one filter per message
    bnb = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(bnb.filters) == 1
    with caplog.at_level(logging.WARNING):
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ...", "no kernels")
        bnb.warning("something else went wrong")
    assert [record.getMessage() for record in caplog.records] == ["something else went wrong"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library_noise.silence()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1)
        warnings.warn("another deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another deprecation"]


@pytest.mark.slow
def test_a_cli_run_with_the_adapted_model_prints_no_library_warning(installed_home, tmp_path):
    """The shipped adapter goes through peft and bitsandbytes, the imports that warned on every run."""
    note = tmp_path / "note.txt"
    note.write_text("The pump at Kings Meadow was repaired on Monday. The board meets again in May.\n")
    env = dict(os.environ, SEPSUM_HOME=str(installed_home))
    result = subprocess.run(
        [sys.executable, "-m", "app", "summarize", str(note), "--model", "smollm2-135m-instruct-sepllm",
         "--max-new-tokens", "2", "--device", "cpu"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    for noise in ("kernels", "FutureWarning", "WARNING", "Warning"):
        assert noise not in result.stderr, result.stderr
