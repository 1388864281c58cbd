"""Downloads end to end against a loopback hub serving the real default model's files (tests/.../hub_server.py).

Covers resume (a connection cut mid-file, and a cancelled run resumed by the next), a corrupted file,
a gated repo (403), a wrong revision (404), a full disk, no network, pickle-only repos, atomic install,
the offline switches set again afterwards, and the downloaded model summarizing with every socket
connection refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import threading
from pathlib import Path

import pytest

from app import offline, paths
from app.cli import main
from app.engine import catalog, download, registry
from app.engine.catalog import CatalogFile
from app.errors import Cancelled, DownloadError
from tests.app.engine.hub_server import LOOPBACK_COMMIT, HubRepo, LoopbackHub
from tests.conftest import refuse_network

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
SAMPLE = Path(__file__).resolve().parents[3] / "resources" / "sample.md"
NAME = "smollm2-loopback"


@pytest.fixture(scope="module")
def hub(default_model_dir):
    tiny_files = {"config.json": b'{"model_type": "llama"}', "pytorch_model.bin": b"\x80\x04pickle"}
    server = LoopbackHub(
        HubRepo.from_folder(REPO, default_model_dir),
        HubRepo("meta-llama/Gated-Model", {"config.json": b"{}", "model.safetensors": b"x" * 64}, gated=True),
        HubRepo("someone/pickles-only", tiny_files),
    )
    yield server
    server.stop()


@pytest.fixture
def loopback(hub, monkeypatch, isolated_home):
    """The loopback hub as HF_ENDPOINT, fresh faults, and a catalog entry for the model it serves."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.faults.__init__()
    model = dataclasses.replace(catalog.get("smollm2-135m-instruct"), name=NAME, revision=LOOPBACK_COMMIT,
                                files={})
    return hub, model


def one_line_error(capsys) -> str:
    """The CLI's error: the last stderr line, the only ``sepsum:`` line, no traceback (progress lines precede it)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and "Traceback" not in "\n".join(lines), lines
    errors = [line for line in lines if line.startswith("sepsum: ")]
    assert errors == [lines[-1]], lines
    return lines[-1]


def _catalog_file(tmp_path: Path, *models) -> Path:
    """A catalog TOML holding ``models`` (the CLI reads the catalog from a file)."""
    lines = ["schema = 1"]
    for model in models:
        lines.append("[[models]]")
        for key, value in dataclasses.asdict(model).items():
            if key == "files":
                continue
            lines.append(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    file = tmp_path / "models.toml"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file


def test_download_installs_verifies_and_registers(loopback, default_model_dir):
    hub, model = loopback
    reports = []
    entry = download.download(model, on_progress=reports.append)
    folder = Path(entry.path)
    assert folder == paths.models_dir() / NAME and entry.source == "download"
    served = sorted(hub.repos[REPO].files)
    assert sorted(p.name for p in folder.iterdir()) == served
    weights = (folder / "model.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == entry.notes["files"]["model.safetensors"]["sha256"]
    assert weights == (default_model_dir / "model.safetensors").read_bytes()
    assert entry.notes["commit"] == LOOPBACK_COMMIT and entry.notes["repo"] == REPO
    assert registry.resolve(NAME).path == str(folder)
    assert not download.staging_dir(model).exists()
    assert reports[-1].done_bytes == reports[-1].total_bytes == sum(len(b) for b in hub.repos[REPO].files.values())
    assert reports[-1].file_count == len(served) and "MB" in reports[-1].describe()
    assert catalog.languages_for(NAME) == ("en",)


def test_offline_switches_are_set_again_after_a_download(loopback):
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    hub, model = loopback
    download.download(model)
    assert offline.is_enforced() and constants.HF_HUB_OFFLINE
    with pytest.raises(OfflineModeIsEnabled):
        HfApi(endpoint=hub.url).model_info(REPO)


def test_a_connection_cut_mid_file_resumes_with_a_range_request(loopback):
    hub, model = loopback
    size = len(hub.repos[REPO].files["model.safetensors"])
    hub.faults.drop_after["model.safetensors"] = size // 3
    entry = download.download(model)
    first, resumed = hub.gets("model.safetensors")
    start = int(resumed.removeprefix("bytes=").rstrip("-"))
    assert first is None and 0 < start <= size // 3  # from the last whole chunk huggingface_hub wrote
    assert hub.faults.sent["model.safetensors"] == size + (size // 3 - start)
    data = (Path(entry.path) / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(hub.repos[REPO].files["model.safetensors"]).hexdigest()


def test_a_cancelled_download_is_not_installed_and_the_next_run_resumes(loopback):
    hub, model = loopback
    size = len(hub.repos[REPO].files["model.safetensors"])
    cancel = threading.Event()

    def stop_midway(progress):
        if progress.file == "model.safetensors" and progress.done_bytes > size // 2:
            cancel.set()

    with pytest.raises(Cancelled, match="run it again to resume"):
        download.download(model, cancel=cancel, on_progress=stop_midway)
    part = download.staging_dir(model) / "model.safetensors.part"
    kept = part.stat().st_size
    assert 0 < kept < size
    assert NAME not in registry.load() and not (paths.models_dir() / NAME).exists()
    assert main(["models", "list"]) == 0  # the half-downloaded model is not listed

    before = dict(hub.faults.sent)
    entry = download.download(model)
    assert hub.gets("model.safetensors")[-1] == f"bytes={kept}-"
    assert hub.gets("model.safetensors")[-1] == f"bytes={kept}-"
    assert hub.faults.sent["model.safetensors"] - before["model.safetensors"] == size - kept
    assert hub.faults.sent["config.json"] == before["config.json"]  # verified files are not fetched again
    assert (Path(entry.path) / "model.safetensors").stat().st_size == size


def test_a_corrupted_file_is_deleted_and_nothing_is_installed(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    real = hub.repos[REPO].files["model.safetensors"]
    hub.faults.corrupt["model.safetensors"] = real[:1000] + bytes([real[1000] ^ 0xFF]) + real[1001:]
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, model))
    assert main(["models", "download", NAME]) == 4
    err = one_line_error(capsys)
    assert "model.safetensors" in err and "arrived corrupted (sha256" in err and "run the download again" in err
    assert not (download.staging_dir(model) / "model.safetensors").exists()
    assert NAME not in registry.load() and not (paths.models_dir() / NAME).exists()
    hub.faults.corrupt.clear()
    assert main(["models", "download", NAME]) == 0  # the retry fetches only what failed
    assert "installed at" in capsys.readouterr().out
    assert len(hub.gets("config.json")) == 1


def test_a_pinned_sha256_that_differs_from_the_hub_refuses_before_downloading(loopback):
    hub, model = loopback
    pinned = dataclasses.replace(model, files={"model.safetensors": CatalogFile(size=1, sha256="0" * 64)})
    with pytest.raises(DownloadError, match="catalog pins 000000000000"):
        download.download(pinned)
    assert hub.gets("model.safetensors") == []


def test_gated_repo_says_what_to_do(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    gated = dataclasses.replace(model, name="gated-loopback", repo="meta-llama/Gated-Model", gated=True)
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, gated))
    assert main(["models", "download", "gated-loopback"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("gated-loopback is gated: it downloads only after you accept its licence")
    assert len(err) == 2 and err[1].startswith("sepsum: meta-llama/Gated-Model is gated and this account has no "
                                               "access (403): accept its licence")
    assert "hf auth login" in err[1]
    assert not (paths.models_dir() / "gated-loopback").exists()


def test_wrong_revision_is_a_404_line(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    wrong = dataclasses.replace(model, revision=hashlib.sha1(b"no such commit").hexdigest())
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, wrong))
    assert main(["models", "download", NAME]) == 4
    err = one_line_error(capsys)
    assert f"has no revision {wrong.revision} (404)" in err


def test_full_disk_refuses_before_fetching(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    monkeypatch.setattr(download, "free_disk_bytes", lambda folder: 50_000_000)
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, model))
    assert main(["models", "download", NAME]) == 4
    err = one_line_error(capsys)
    assert "of disk in" in err and "50 MB free: free disk space or set SEPSUM_HOME" in err
    assert all(method != "GET" or "/resolve/" not in path for method, path, _ in hub.faults.requests)


def test_disk_filling_up_mid_download_is_one_line(loopback, monkeypatch):
    hub, model = loopback
    import errno

    real_fetch = download._fetch

    def fetch(plan_, remote, folder, tracker):
        if remote.name == "model.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fetch(plan_, remote, folder, tracker)

    monkeypatch.setattr(download, "_fetch", fetch)
    with pytest.raises(DownloadError, match="the disk filled up while downloading"):
        download.download(model)
    assert NAME not in registry.load()


def test_no_network_is_one_line(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, model))
    assert main(["models", "download", NAME]) == 4
    err = one_line_error(capsys)
    assert f"cannot reach http://127.0.0.1:{port}" in err and "check the network connection" in err


def test_unknown_host_is_one_line(loopback, capsys, tmp_path, monkeypatch):
    hub, model = loopback
    monkeypatch.setenv("HF_ENDPOINT", "http://no-such-host.invalid")
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, model))
    assert main(["models", "download", NAME]) == 4
    assert "cannot reach http://no-such-host.invalid" in one_line_error(capsys)


def test_repos_with_only_pickled_weights_are_refused(loopback):
    hub, model = loopback
    pickles = dataclasses.replace(model, repo="someone/pickles-only")
    with pytest.raises(DownloadError, match=r"only pickled weights \(pytorch_model.bin\): SepSum loads safetensors"):
        download.download(pickles)
    assert hub.gets("pytorch_model.bin") == []


def test_only_safetensors_and_support_files_are_wanted():
    assert download.wanted("model-00001-of-00004.safetensors") and download.wanted("tokenizer.json")
    for name in ("pytorch_model.bin", "consolidated.safetensors", "modeling_custom.py", "onnx/model.onnx",
                 "original/params.json", "README.md"):
        assert not download.wanted(name), name


@pytest.mark.slow
def test_the_downloaded_model_summarizes_with_every_connection_refused(loopback, capsys, tmp_path, monkeypatch):
    """Download over the loopback hub, then summarize the sample with the new model under a socket guard."""
    hub, model = loopback
    monkeypatch.setattr(catalog, "CATALOG_FILE", _catalog_file(tmp_path, model))
    assert main(["models", "download", NAME]) == 0
    assert NAME in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert NAME in capsys.readouterr().out

    attempts = refuse_network(monkeypatch)
    assert main(["summarize", str(SAMPLE), "--model", NAME, "--length", "short", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert attempts == []
    assert len(out.split()) > 10


@pytest.mark.slow
def test_ctrl_c_stops_the_cli_download_and_the_next_run_resumes(loopback, tmp_path, isolated_home, capsys,
                                                               monkeypatch):
    """A real SIGINT to ``sepsum models download`` in a child process, then the same command resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    hub, model = loopback
    hub.faults.seconds_per_mb = 0.05  # about 14 s for the weights: time to interrupt
    env = {**os.environ, "SEPSUM_CATALOG": str(_catalog_file(tmp_path, model)), "SEPSUM_HOME": str(isolated_home),
           "HF_ENDPOINT": hub.url}
    # `python -m app models download NAME` with Ctrl-C working as in a terminal: a test run started in the
    # background (`cmd &` without job control, as a CI runner may) hands its children SIGINT ignored
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv = ['sepsum', 'models', 'download', sys.argv[1]]; runpy.run_module('app', run_name='__main__')")
    child = subprocess.Popen([sys.executable, "-c", start, NAME], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = download.staging_dir(model) / "model.safetensors.part"
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size > 20_000_000) and time.monotonic() < deadline:
        time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == (f"sepsum: download of {NAME} stopped (Ctrl-C): run the same command "
                                            "again to resume")
    kept = part.stat().st_size
    assert kept > 20_000_000 and NAME not in registry.load()

    hub.faults.seconds_per_mb = 0.0
    monkeypatch.setenv("SEPSUM_CATALOG", env["SEPSUM_CATALOG"])  # the catalog file, as the child read it
    assert main(["models", "download", NAME]) == 0
    assert hub.gets("model.safetensors")[-1] == f"bytes={kept}-"
    assert "installed at" in capsys.readouterr().out
