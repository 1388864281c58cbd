"""The Get models dialog: fit verdicts, a download from a loopback hub with progress and cancel, the error
dialog, device/quantization with the verdict, and the main window's out-of-memory advice."""

from __future__ import annotations

import dataclasses
import gc
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from app import paths
from app.engine import catalog, download, fit, registry
from app.engine.hardware import Machine, probe
from app.gui.models_page import ModelsDialog
from tests.app.engine.hub_server import LOOPBACK_COMMIT, HubRepo, LoopbackHub
from tests.conftest import refuse_network

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"
GB = 1_000_000_000
#: Where the screenshots go: a temporary folder in tests, docs/screenshots when asked for.
SHOTS = os.environ.get("SEPSUM_SCREENSHOTS")
TWELVE_GB_GPU = Machine(ram_total=32 * GB, ram_free=24 * GB, disk_free=200 * GB, gpu="cuda",
                        gpu_name="NVIDIA GPU (12 GB)", gpu_total=12 * GB, gpu_free=11 * GB,
                        label="example machine, sized by the estimator (not this one)")


def _shot(widget, name: str, tmp_path: Path) -> Path:
    from app.gui.application import save_screenshot

    path = save_screenshot(widget, Path(SHOTS or tmp_path) / name)
    assert path.stat().st_size > 10_000
    return path


@pytest.fixture(scope="module")
def hub(default_model_dir):
    server = LoopbackHub(HubRepo.from_folder(REPO, default_model_dir),
                         HubRepo("meta-llama/Gated-Model", {"config.json": b"{}"}, gated=True))
    yield server
    server.stop()


@pytest.fixture
def loopback_model(hub, monkeypatch, installed_home):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.faults.__init__()
    return dataclasses.replace(catalog.get("smollm2-135m-instruct"), name="smollm2-loopback",
                               label="SmolLM2 135M (loopback hub)", revision=LOOPBACK_COMMIT, files={})


@pytest.fixture
def make_dialog(qtbot):
    dialogs = []

    def make(**kwargs):
        kwargs.setdefault("show_error_dialogs", False)
        dialog = ModelsDialog({}, **kwargs)
        dialog.show()
        qtbot.waitExposed(dialog)
        dialogs.append(dialog)
        return dialog

    yield make
    for dialog in dialogs:
        dialog.close()
        dialog.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    # Collect them here, on the GUI thread: a collection triggered later on a worker thread would stop
    # their timers from the wrong thread (as tests/gui/conftest.py does for windows).
    del dialogs[:]
    gc.collect()


def test_catalog_with_fit_verdicts_for_a_12_gb_gpu(make_dialog, installed_home, tmp_path):
    dialog = make_dialog(machine=TWELVE_GB_GPU)
    models = catalog.load()
    assert dialog.table.rowCount() == len(models)
    assert dialog.machine_label.text().startswith("Example machine, sized by the estimator (not this one): RAM "
                                                  "32.0 GB (24.0 GB free) · GPU NVIDIA GPU (12 GB) 12.0 GB")
    row = {r.model.name: i for i, r in enumerate(dialog.rows)}
    qwen7 = row["qwen2.5-7b-instruct"]
    assert dialog.table.item(qwen7, 7).text().endswith("· GPU")  # 4-bit fits the 12 GB GPU
    assert dialog.table.item(qwen7, 5).text().endswith("· CPU")  # bf16 only fits the RAM
    assert dialog.status_text("smollm2-135m-instruct").startswith("installed")
    pick = dialog.recommendation
    assert pick is not None and pick.device == "cuda"
    assert "★ recommended" in dialog.status_text(pick.model.name)
    assert dialog.selected_model() == pick.model
    assert "Recommended: " in dialog.cache_label.text()
    assert "gated: accept its licence first" in dialog.status_text("llama-3.2-3b-instruct")
    _shot(dialog, "models.png", tmp_path)


def test_this_machine_lists_the_whole_catalog(make_dialog, installed_home, tmp_path):
    machine = probe()
    dialog = make_dialog(machine=machine)
    assert dialog.machine_label.text().startswith("This machine: RAM ")
    where = {row.fits[q].verdict for row in dialog.rows for q in fit.QUANTS}
    assert where <= {fit.GPU, fit.CPU, fit.TOO_LARGE} and (machine.gpu is not None or fit.GPU not in where)
    assert dialog.status_text("smollm2-135m-instruct").startswith("installed")
    _shot(dialog, "models-this-machine.png", tmp_path)


def test_device_and_quantization_show_the_verdict(make_dialog, installed_home):
    dialog = make_dialog(machine=TWELVE_GB_GPU)
    dialog.select("qwen2.5-7b-instruct")
    dialog.device_combo.setCurrentText("cuda")
    dialog.quant_combo.setCurrentIndex(fit.QUANTS.index("none"))
    assert dialog.verdict_label.text().startswith("Qwen2.5 7B Instruct at bf16 on cuda: too large (")
    assert dialog.verdict_label.text().endswith("GB free GPU memory): choose 8-bit.") or \
        dialog.verdict_label.text().endswith("choose 4-bit.")
    assert dialog.dtype_label.text() == "dtype bf16 (chosen for the device)"
    dialog.quant_combo.setCurrentIndex(fit.QUANTS.index("4bit"))
    assert "at 4-bit on cuda: fits (" in dialog.verdict_label.text()
    dialog.device_combo.setCurrentText("mps")
    assert "has no MPS GPU" in dialog.verdict_label.text()
    assert not dialog.use_button.isEnabled()  # not installed
    dialog.select("smollm2-135m-instruct")
    assert dialog.use_button.isEnabled() and not dialog.download_button.isEnabled()


def test_download_from_the_page_then_use_it(make_dialog, loopback_model, qtbot, tmp_path):
    dialog = make_dialog(machine=probe(), models=[catalog.get("smollm2-135m-instruct"), loopback_model])
    dialog.select(loopback_model.name)
    assert dialog.download_button.isEnabled() and not dialog.use_button.isEnabled()
    reports = []
    dialog.worker.progress.connect(reports.append)
    with qtbot.waitSignal(dialog.modelInstalled, timeout=180_000) as installed:
        dialog.download_button.click()
        assert dialog.status_text(loopback_model.name).startswith("downloading…")
        assert not dialog.download_button.isEnabled() and dialog.cancel_button.isEnabled()
    assert installed.args == [loopback_model.name]
    assert reports and reports[-1].done_bytes == reports[-1].total_bytes
    assert dialog.progress_bar.value() == 1000 and "installed at" in dialog.progress_label.text()
    assert dialog.status_text(loopback_model.name).startswith("installed")
    assert registry.resolve(loopback_model.name).source == "download"
    from app.gui.settings_dialog import model_choices

    assert (f"{loopback_model.name}  (download)", loopback_model.name) in model_choices()  # selectable in Settings
    dialog.quant_combo.setCurrentIndex(fit.QUANTS.index("4bit"))
    dialog.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(dialog.settingsChosen) as chosen:
        dialog.use_button.click()
    assert chosen.args[0]["model"] == loopback_model.name and chosen.args[0]["quant"] == "4bit"
    assert chosen.args[0]["device"] == "cpu"


def test_download_in_progress_then_cancel(make_dialog, loopback_model, hub, qtbot, tmp_path):
    hub.faults.seconds_per_mb = 0.02  # about 5 s for the 270 MB of weights
    dialog = make_dialog(machine=TWELVE_GB_GPU, models=[*catalog.load().values(), loopback_model])
    dialog.select(loopback_model.name)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.progress_bar.value() > 250, timeout=60_000)
    assert "model.safetensors (4/6)" in dialog.progress_label.text() and "MB/s" in dialog.progress_label.text()
    _shot(dialog, "models-downloading.png", tmp_path)
    dialog.cancel_button.click()  # (waiting on the worker's own signal would stop a timer from its thread)
    qtbot.waitUntil(lambda: dialog.downloading is None, timeout=30_000)
    assert "run it again to resume" in dialog.progress_label.text()
    assert dialog.downloading is None and dialog.download_button.isEnabled()
    assert (download.staging_dir(loopback_model) / "model.safetensors.part").stat().st_size > 0
    assert loopback_model.name not in registry.load()
    assert not (paths.models_dir() / loopback_model.name).exists()


def test_a_failed_download_opens_the_error_dialog(make_dialog, loopback_model, qtbot):
    gated = dataclasses.replace(loopback_model, name="gated-loopback", repo="meta-llama/Gated-Model", gated=True)
    dialog = make_dialog(machine=probe(), models=[gated], show_error_dialogs=True)
    dialog.select(gated.name)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.error_box is not None, timeout=30_000)
    assert dialog.error_box.windowTitle() == "Download failed"
    assert dialog.error_box.text().startswith("meta-llama/Gated-Model is gated and this account has no access (403)")
    assert "hf auth login" in dialog.error_box.text() and dialog.last_error == dialog.error_box.text()
    dialog.error_box.close()
    assert dialog.download_button.isEnabled()


def test_main_window_opens_get_models(make_window, qtbot):
    window = make_window()
    window.models_action.trigger()
    dialog = window.models_dialog
    assert isinstance(dialog, ModelsDialog) and dialog.isVisible()
    dialog.select("smollm2-135m-instruct")
    with qtbot.waitSignal(dialog.settingsChosen):
        dialog.use_button.click()
    assert window.settings["model"] is None  # the default model stays "the default"
    dialog.close()
    qtbot.waitUntil(lambda: window.models_dialog is None)


def test_out_of_memory_names_the_fix_in_the_window(make_window, qtbot, shared_data):
    from app.errors import ResourceError
    from app.gui.worker import SummaryWorker

    def out_of_memory(request, cancel):
        raise ResourceError("CUDA ran out of memory while loading qwen2.5-7b-instruct (7.9 GB of 8.0 GB GPU memory "
                            "in use at the peak): choose --quant 4bit, a smaller cache budget (--cache sepllm) or "
                            "--device cpu")
        yield  # a generator, as the pipeline is

    window = make_window(worker=SummaryWorker(summarize_fn=out_of_memory), show_error_dialogs=True)
    window.add_paths([shared_data / "books" / "cats_gutenberg.txt"] if (shared_data / "books" /
                     "cats_gutenberg.txt").exists() else [next((shared_data / "pdfs").glob("*.pdf"))])
    with qtbot.waitSignal(window.queueFinished, timeout=60_000):
        window.start()
    text = window.error_box.text()
    assert "choose Quantization 4bit (Settings or Get models)" in text
    assert "a smaller cache (the Maximum memory saving preset)" in text and "Device cpu" in text
    assert text.endswith("Get models (toolbar) shows which model and quantization fit this machine.")
    window.error_box.close()


def test_a_pre_run_refusal_names_the_fix_in_the_window(installed_home):
    """The real memory check's refusal (a full cache far beyond free RAM) said in the window's words."""
    from app.engine.estimate import check_fits, estimate_memory, free_bytes
    from app.errors import ResourceError
    from app.gui.error_advice import for_window

    per_entry = estimate_memory(None, "cpu", "none", None, tokens=1).kv_bytes_per_entry
    tokens = int(free_bytes("cpu") // per_entry) * 3
    with pytest.raises(ResourceError) as caught:
        check_fits(estimate_memory(None, "cpu", "none", None, tokens=tokens), "cpu")
    message = str(caught.value)
    assert "--" in message  # the engine names CLI flags ...
    advice = for_window(message)
    assert "--" not in advice  # ... the window names settings
    assert advice.endswith("Get models (toolbar) shows which model and quantization fit this machine.")


def test_the_window_and_get_models_open_without_the_network(make_window, qtbot, monkeypatch):
    refuse_network(monkeypatch)
    window = make_window()
    window.models_action.trigger()
    assert window.models_dialog.table.rowCount() == len(catalog.load())
    window.models_dialog.close()
    qtbot.waitUntil(lambda: window.models_dialog is None)
