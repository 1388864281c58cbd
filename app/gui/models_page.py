"""The "Get models" dialog: the catalog with fit verdicts for this machine, downloads with progress and cancel.

The table shows, per model and quantization, the pre-run memory estimate and where it fits (GPU,
CPU, too large); the recommended pick is marked. Below it the device and quantization to run with
(and the dtype they imply) with the verdict for the selected model. Downloads run on a
:class:`DownloadWorker` thread; errors open a dialog (or, in automation, land in ``last_error``).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.engine import catalog, fit, hardware
from app.engine.catalog import CatalogModel
from app.engine.estimate import format_bytes
from app.gui import theme
from app.gui.download_worker import DownloadWorker

log = logging.getLogger(__name__)

COLUMNS = ("Model", "Parameters", "Context", "Languages", "Licence", "bf16", "8-bit", "4-bit", "Status")
_QUANT_COLUMN = {quant: 5 + index for index, quant in enumerate(fit.QUANTS)}
_STATUS_COLUMN = len(COLUMNS) - 1


def _run_cache(values: dict[str, Any]):
    from app.request import cache_config, from_settings

    return cache_config(from_settings([], values))


class ModelsDialog(QDialog):
    """Lists the catalog for ``machine`` (default: this one) with the run settings ``values``.

    Signals: ``modelInstalled(name)`` after a download; ``settingsChosen(values)`` when the user picks a
    model, device and quantization to run with.
    """

    modelInstalled = Signal(str)
    settingsChosen = Signal(object)
    downloadRequested = Signal(object)

    def __init__(self, values: dict[str, Any] | None = None, parent: QWidget | None = None, *,
                 machine: hardware.Machine | None = None, models: list[CatalogModel] | None = None,
                 show_error_dialogs: bool = True):
        super().__init__(parent)
        from app import settings as settings_schema

        self.setWindowTitle("Get models")
        self.setAccessibleName("Get models")
        self.resize(1180, 600)
        self.values = dict(values if values is not None else settings_schema.load())
        self.machine = machine or hardware.probe()
        self.models = models if models is not None else list(catalog.load().values())
        self.show_error_dialogs = show_error_dialogs
        self.rows: list[fit.ModelFit] = []
        self.recommendation: fit.Recommendation | None = None
        self.downloading: CatalogModel | None = None
        self.last_error = ""
        self.error_box: QMessageBox | None = None

        self.machine_label = QLabel(self)
        self.machine_label.setWordWrap(True)
        self.cache_label = QLabel(self)
        self.cache_label.setObjectName("muted")
        self.cache_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setAccessibleName("Catalog models")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.device_combo = QComboBox(self)
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        self.device_combo.setAccessibleName("Device")
        self.device_combo.setCurrentText(self.values.get("device") or "auto")
        self.quant_combo = QComboBox(self)
        for quant in fit.QUANTS:
            self.quant_combo.addItem(fit.QUANT_LABELS[quant], quant)
        self.quant_combo.setAccessibleName("Quantization")
        self.quant_combo.setCurrentIndex(fit.QUANTS.index(self.values.get("quant") or "none"))
        self.dtype_label = QLabel(self)
        self.dtype_label.setObjectName("muted")
        self.verdict_label = QLabel(self)
        self.verdict_label.setAccessibleName("Fit verdict")
        self.verdict_label.setWordWrap(True)
        self.device_combo.currentTextChanged.connect(self._update_verdict)
        self.quant_combo.currentIndexChanged.connect(self._update_verdict)

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setAccessibleName("Download progress")
        self.progress_label = QLabel(self)
        self.progress_label.setObjectName("muted")
        self.download_button = QPushButton("Download", self)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton("Cancel download", self)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.use_button = QPushButton("Use this model", self)
        self.use_button.clicked.connect(self.use_selected)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)

        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Run on", self))
        run_row.addWidget(self.device_combo)
        run_row.addWidget(QLabel("Quantization", self))
        run_row.addWidget(self.quant_combo)
        run_row.addWidget(self.dtype_label)
        run_row.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.machine_label)
        layout.addWidget(self.cache_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(run_row)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addLayout(buttons)

        self.thread = QThread(self)
        self.thread.setObjectName("download-worker")
        self.worker = DownloadWorker()
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self.downloadRequested.connect(self.worker.start)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(self._cancelled)
        self.refresh()
        self.thread.start()

    # the table ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Estimate every model for the machine and the run's cache, and fill the table."""
        cache_config = _run_cache(self.values)
        self.rows = fit.evaluate(self.machine, cache_config, decode_weights=self.values.get("decode_weights") or "auto",
                                 models=self.models)
        self.recommendation = fit.recommend(self.machine, self.rows)
        self.machine_label.setText(f"{self.machine.label[:1].upper()}{self.machine.label[1:]}: "
                                   f"{hardware.describe(self.machine)}")
        budget = (f"the {cache_config.policy} cache of {cache_config.max_entries} entries" if cache_config.bounded
                  else "a full cache of 8192 tokens")
        pick = (f" Recommended: {self.recommendation.describe()}." if self.recommendation else
                " Nothing fits: close other programs or choose a smaller cache.")
        self.cache_label.setText(f"Memory for the weights + {budget} + runtime, as checked before a run.{pick}")
        selected = self.selected_model()
        self.table.setRowCount(len(self.rows))
        colors = theme.colors()
        brush = {fit.GPU: QBrush(QColor(colors.ok)), fit.CPU: QBrush(QColor(colors.accent)),
                 fit.TOO_LARGE: QBrush(QColor(colors.error))}
        for row_index, row in enumerate(self.rows):
            model = row.model
            languages = ", ".join(model.languages[:4]) + (f" +{len(model.languages) - 4}"
                                                         if len(model.languages) > 4 else "")
            cells = [model.label, f"{model.parameters / 1e9:.2f} B", f"{model.trained_context // 1024}k tokens",
                     languages, model.licence + (" (gated)" if model.gated else "")]
            tips = [f"{model.repo} at {model.revision[:12]}\n{model.notes}", "", "", ", ".join(model.languages),
                    model.licence_url]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, model.name)
                item.setToolTip(tips[column])
                self.table.setItem(row_index, column, item)
            for quant, column in _QUANT_COLUMN.items():
                quant_fit = row.fits[quant]
                item = QTableWidgetItem(fit.cell(quant_fit).replace(" -", " · too large").replace(
                    " GPU", " · GPU").replace(" CPU", " · CPU"))
                item.setForeground(brush[quant_fit.verdict])
                item.setToolTip(f"{quant_fit.verdict}: {quant_fit.estimate().describe()}")
                self.table.setItem(row_index, column, item)
            self.table.setItem(row_index, _STATUS_COLUMN, QTableWidgetItem(self._status(row)))
        if selected is not None:
            self.select(selected.name)
        elif self.recommendation is not None:
            self.select(self.recommendation.model.name)
        self._update_buttons()
        self._update_verdict()

    def _status(self, row: fit.ModelFit) -> str:
        parts = []
        if self.downloading is not None and self.downloading.name == row.model.name:
            parts.append("downloading…")
        elif row.installed:
            parts.append("installed")
        if self.recommendation is not None and self.recommendation.model.name == row.model.name:
            where = "CPU" if self.recommendation.device == "cpu" else "GPU"
            parts.append(f"★ recommended ({fit.QUANT_LABELS[self.recommendation.quant]}, {where})")
        if row.model.thinking:
            parts.append("writes a <think> block first")
        if row.model.gated and not row.installed:
            parts.append("gated: accept its licence first")
        if not row.installed and row.model.download_bytes > self.machine.disk_free:
            parts.append(f"not enough disk ({format_bytes(row.model.download_bytes)})")
        return " · ".join(parts)

    def select(self, name: str) -> None:
        for index, row in enumerate(self.rows):
            if row.model.name == name:
                self.table.selectRow(index)
                return

    def selected_row(self) -> fit.ModelFit | None:
        indexes = self.table.selectionModel().selectedRows()
        return self.rows[indexes[0].row()] if indexes else None

    def selected_model(self) -> CatalogModel | None:
        row = self.selected_row() if self.rows else None
        return row.model if row is not None else None

    def status_text(self, name: str) -> str:
        for index, row in enumerate(self.rows):
            if row.model.name == name:
                return self.table.item(index, _STATUS_COLUMN).text()
        return ""

    def _selection_changed(self) -> None:
        self._update_buttons()
        self._update_verdict()

    # device, dtype, quantization ---------------------------------------------------------------
    def chosen_device(self) -> str:
        device = self.device_combo.currentText()
        return (self.machine.gpu or "cpu") if device == "auto" else device

    def verdict_text(self) -> str:
        """The fit of the selected model with the chosen device and quantization, in one sentence."""
        row = self.selected_row()
        if row is None:
            return "Select a model to see whether it fits."
        quant = self.quant_combo.currentData()
        quant_fit = row.fits[quant]
        device = self.chosen_device()
        label = f"{row.model.label} at {fit.QUANT_LABELS[quant]} on {device}"
        if device in ("cuda", "mps"):
            if self.machine.gpu != device:
                return f"{label}: this machine has no {device.upper()} GPU: choose cpu or auto."
            if quant_fit.gpu is None:
                return f"{label}: bitsandbytes has no MPS kernels: choose bf16 or cpu."
            estimate, free, where = quant_fit.gpu, self.machine.gpu_free, "GPU memory"
        else:
            estimate, free, where = quant_fit.cpu, self.machine.ram_free, "RAM"
        needed = format_bytes(estimate.total_bytes)
        if estimate.total_bytes <= free:
            return f"{label}: fits ({needed} of {format_bytes(free)} free {where})."
        lighter = [q for q in fit.QUANTS[fit.QUANTS.index(quant) + 1:]
                   if (row.fits[q].gpu if device != "cpu" else row.fits[q].cpu) is not None
                   and (row.fits[q].gpu if device != "cpu" else row.fits[q].cpu).total_bytes <= free]
        fix = f"choose {fit.QUANT_LABELS[lighter[0]]}" if lighter else "choose a smaller model"
        return f"{label}: too large ({needed}, {format_bytes(free)} free {where}): {fix}."

    def _update_verdict(self) -> None:
        from app.engine import devices

        device = self.chosen_device()
        dtype = (self.machine.gpu_dtype if device in ("cuda", "mps") else
                 devices.dtype_name(devices.choose_dtype("cpu")))
        self.dtype_label.setText(f"dtype {dtype} (chosen for the device)")
        self.verdict_label.setText(self.verdict_text())

    def use_selected(self) -> None:
        """Run with the selected installed model, device and quantization (saved like the settings dialog)."""
        row = self.selected_row()
        if row is None or not row.installed:
            return
        from app.engine import registry

        name = row.model.name
        default = registry.load().get(name)
        values = {**self.values, "model": None if default is not None and default.source == "default" else name,
                  "device": self.device_combo.currentText(), "quant": self.quant_combo.currentData()}
        self.values = values
        self.settingsChosen.emit(values)

    # downloads ---------------------------------------------------------------------------------
    def download_selected(self) -> None:
        model = self.selected_model()
        if model is None or self.downloading is not None:
            return
        self.downloading = model
        self.last_error = ""
        self.progress_bar.setValue(0)
        self.progress_label.setText(f"Downloading {model.label} from {model.repo}…")
        self.refresh()
        self.downloadRequested.emit(model)

    def cancel_download(self) -> None:
        if self.downloading is not None:
            self.worker.cancel.set()
            self.progress_label.setText("Stopping…")

    def _progress(self, progress) -> None:
        self.progress_bar.setValue(int(progress.fraction * 1000))
        self.progress_label.setText(f"{progress.fraction * 100:.1f} %  {progress.describe()}")

    def _finished(self, entry) -> None:
        self.downloading = None
        self.progress_bar.setValue(1000)
        self.progress_label.setText(f"{entry.name} installed at {entry.path}")
        self.refresh()
        self.select(entry.name)
        self.modelInstalled.emit(entry.name)

    def _cancelled(self, message: str) -> None:
        self.downloading = None
        self.progress_label.setText(message)
        self.refresh()

    def _failed(self, message: str) -> None:
        self.downloading = None
        self.last_error = message
        self.progress_label.setText("Download failed: see the message")
        self.refresh()
        if self.show_error_dialogs:
            box = QMessageBox(QMessageBox.Icon.Warning, "Download failed", message, QMessageBox.StandardButton.Ok,
                              self)
            box.setAccessibleName("Error")
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.open()
            self.error_box = box

    def _update_buttons(self) -> None:
        row = self.selected_row() if self.rows else None
        busy = self.downloading is not None
        self.download_button.setEnabled(row is not None and not row.installed and not busy)
        self.cancel_button.setEnabled(busy)
        self.use_button.setEnabled(row is not None and row.installed and not busy)

    def shutdown(self) -> None:
        """Stop a running download (what arrived is kept for resume) and wait for the worker thread."""
        self.worker.cancel.set()
        if self.thread.isRunning():
            self.thread.quit()
            self.thread.wait()

    def done(self, result: int) -> None:  # Esc and Close end here as well as closeEvent
        self.shutdown()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)
