"""The main window: queue on the left, summary / document / history tabs and the memory panel on the right.

All model work runs in one :class:`SummaryWorker` on a QThread. The window owns a
:class:`~app.job_queue.JobQueue` (the jobs' states, plain Python), passes the worker's signals to it and
draws what changed, saves what streams into the history every couple of seconds, and cancels and waits
for the thread when it closes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, paths
from app import settings as settings_schema
from app.gui import error_advice, theme
from app.gui.document_view import DocumentView
from app.gui.history_view import HistoryView
from app.gui.memory_panel import MemoryPanel, format_bytes, format_duration
from app.gui.queue_panel import DropZone, QueueList, RecentList, expand_paths, paths_from_mime
from app.gui.settings_dialog import PRESETS, SettingsDialog, preset_of
from app.gui.summary_view import SummaryView
from app.gui.worker import SummaryWorker
from app.history import History
from app.job_queue import READING_PHASES, JobQueue, QueueEntry

log = logging.getLogger(__name__)

HISTORY_SAVE_S = 2.0
PROCESS_SAMPLE_MS = 250
MAX_RECENT = 12


def process_memory() -> tuple[int, int | None, int | None]:
    """(RSS, GPU allocated, GPU reserved) in bytes; the GPU values are None while CUDA is not in use."""
    from app.engine.memory import sample_memory

    sample = sample_memory()
    alloc, reserved = sample.get("gpu_allocated_bytes", 0), sample.get("gpu_reserved_bytes", 0)
    if not alloc and not reserved:
        return int(sample["rss_bytes"]), None, None
    return int(sample["rss_bytes"]), int(alloc), int(reserved)


class MainWindow(QMainWindow):
    """SepSum's window. ``queueFinished(failed)`` fires when a started queue has no job left.

    ``failed`` counts the documents that failed (0: all summarized).
    """

    runRequested = Signal(object)
    estimateRequested = Signal(object)
    queueFinished = Signal(int)
    closed = Signal()

    def __init__(self, history: History | None = None, worker: SummaryWorker | None = None,
                 show_error_dialogs: bool = True):
        super().__init__()
        self.setWindowTitle("SepSum")
        self.setWindowIcon(theme.app_icon())
        self.setAcceptDrops(True)
        self.setAccessibleName("SepSum main window")
        self.show_error_dialogs = show_error_dialogs
        self.request_overrides: dict[str, Any] = {}  # extra SummaryRequest fields (tests: small max tokens)
        self.history = history or History()
        recovered = self.history.recover_interrupted()
        self.settings = _load_settings()
        self._ui_state = QSettings(str(paths.ensure(paths.home()) / "gui.ini"), QSettings.Format.IniFormat)
        self.job_queue = JobQueue()  # the jobs and their states; this window only draws them
        self.shown_job: int | None = None
        self.error_box: QMessageBox | None = None
        self._closing = False
        self._estimate: dict[str, Any] = {}

        self._build_widgets()
        self._build_actions()
        self._start_worker(worker or SummaryWorker())
        self._memory_timer = QTimer(self)
        self._memory_timer.setInterval(PROCESS_SAMPLE_MS)
        self._memory_timer.timeout.connect(self._sample_process)
        self._restore_state()
        self._update_actions()
        self.request_estimate()
        if recovered:
            self.statusBar().showMessage(
                f"{recovered} summary from the last session did not finish: kept in History as incomplete", 10000)
        else:
            self.statusBar().showMessage("Ready: drop documents or press Ctrl+O", 5000)

    @property
    def jobs(self) -> dict[int, QueueEntry]:
        return self.job_queue.jobs

    @property
    def current(self) -> QueueEntry | None:
        return self.job_queue.current

    @property
    def running(self) -> bool:
        return self.job_queue.running

    # construction ------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.drop_zone = DropZone(self)
        self.drop_zone.pathsDropped.connect(self.add_paths)
        self.queue = QueueList(self)
        self.queue.itemSelectionChanged.connect(self._selection_changed)
        self.recent = RecentList(self)
        self.recent.pathActivated.connect(lambda path: self.add_paths([path]))
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(8, 8, 4, 8)
        left_layout.addWidget(self.drop_zone)
        left_layout.addWidget(_caption("Queue", left))
        left_layout.addWidget(self.queue, 3)
        left_layout.addWidget(_caption("Recent files", left))
        left_layout.addWidget(self.recent, 1)

        self.summary_view = SummaryView(self)
        self.summary_view.regenerateRequested.connect(self.regenerate)
        self.summary_view.exported.connect(lambda path: self.statusBar().showMessage(f"Exported {path}", 5000))
        self.summary_view.citationClicked.connect(self.show_source_span)
        self.document_view = DocumentView(self)
        self.history_view = HistoryView(self.history, self)
        self.history_view.entryActivated.connect(self.show_history_entry)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setAccessibleName("Views")
        self.tabs.addTab(self.summary_view, "Summary")
        self.tabs.addTab(self.document_view, "Document")
        self.tabs.addTab(self.history_view, "History")
        self.memory_panel = MemoryPanel(self)

        self.right_split = QSplitter(Qt.Orientation.Vertical, self)
        self.right_split.addWidget(self.tabs)
        self.right_split.addWidget(self.memory_panel)
        self.right_split.setStretchFactor(0, 3)
        self.right_split.setStretchFactor(1, 2)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(4, 8, 8, 8)
        self.notice_label = QLabel(right)  # shown above the summary while the job has a notice
        self.notice_label.setObjectName("notice")
        self.notice_label.setWordWrap(True)
        self.notice_label.setAccessibleName("Notice")
        self.notice_label.hide()
        right_layout.addWidget(self.notice_label)
        right_layout.addWidget(self.right_split)
        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.addWidget(left)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(0, 1)
        self.main_split.setStretchFactor(1, 3)
        self.main_split.setSizes([320, 900])
        self.setCentralWidget(self.main_split)

        self.model_label = QLabel(self)
        self.model_label.setObjectName("muted")
        self.statusBar().addPermanentWidget(self.model_label)
        self._show_model_label()

    def _build_actions(self) -> None:
        def action(text: str, shortcut, slot, tip: str) -> QAction:
            act = QAction(text, self)
            if shortcut:
                act.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
            act.setToolTip(f"{tip} ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                           if shortcut else tip)
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.open_action = action("Open…", QKeySequence.StandardKey.Open, self.open_dialog, "Add documents to the queue")
        self.open_folder_action = action("Open folder…", "Ctrl+Shift+O", self.open_folder_dialog,
                                         "Add every supported document in a folder")
        self.start_action = action("Start", [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")], self.start,
                                   "Summarize the queued documents")
        self.cancel_action = action("Cancel", "Esc", self.cancel, "Stop the running summary")
        self.settings_action = action("Settings…", "Ctrl+,", self.open_settings, "Model, cache and summary settings")
        self.models_action = action("Get models…", "Ctrl+M", self.open_models,
                                    "Models that fit this machine: download one, choose device and quantization")
        self.copy_action = action("Copy", QKeySequence.StandardKey.Copy, self.summary_view.copy,
                                  "Copy the summary as Markdown")
        self.export_action = action("Export…", QKeySequence.StandardKey.Save,
                                    lambda: self.summary_view.export_dialog("md"), "Export the summary")
        self.regenerate_action = action("Regenerate", "Ctrl+R", self.regenerate,
                                        "Summarize the selected document again with the current settings")
        self.remove_action = action("Remove", QKeySequence.StandardKey.Delete, self.remove_selected,
                                    "Remove the selected documents from the queue")
        self.clear_action = action("Clear finished", "Ctrl+L", self.clear_finished, "Remove finished documents")
        self.quit_action = action("Quit", QKeySequence.StandardKey.Quit, self.close, "Quit SepSum")
        self.history_action = action("History", "Ctrl+H", lambda: self.tabs.setCurrentWidget(self.history_view),
                                     "Show past summaries")
        for act in (self.copy_action,):
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.setIconSize(QSize(18, 18))
        toolbar.addAction(self.open_action)
        toolbar.addSeparator()
        toolbar.addAction(self.start_action)
        toolbar.widgetForAction(self.start_action).setObjectName("startButton")
        toolbar.addAction(self.cancel_action)
        toolbar.addSeparator()
        self.preset_combo = QComboBox(self)
        self.preset_combo.addItems(list(PRESETS) + ["Custom"])
        self.preset_combo.setAccessibleName("Cache preset")
        self.preset_combo.setToolTip("Cache preset: how much of the document the model keeps in memory")
        self.preset_combo.setCurrentText(preset_of(self.settings))
        self.preset_combo.textActivated.connect(self._preset_chosen)
        self.length_combo = QComboBox(self)
        self.length_combo.addItems(list(settings_schema.BY_NAME["length"].choices or ()))
        self.length_combo.setAccessibleName("Summary length")
        self.length_combo.setToolTip("Summary length")
        self.length_combo.setCurrentText(self.settings.get("length") or "medium")
        self.length_combo.textActivated.connect(self._length_chosen)
        toolbar.addWidget(_caption("Cache", self, muted=True))
        toolbar.addWidget(self.preset_combo)
        toolbar.addWidget(_caption("  Length", self, muted=True))
        toolbar.addWidget(self.length_combo)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        toolbar.addAction(self.models_action)
        toolbar.addAction(self.history_action)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for act in (self.open_action, self.open_folder_action, None, self.export_action, None, self.quit_action):
            file_menu.addSeparator() if act is None else file_menu.addAction(act)
        run_menu = menu.addMenu("&Run")
        for act in (self.start_action, self.cancel_action, self.regenerate_action, None, self.remove_action,
                    self.clear_action):
            run_menu.addSeparator() if act is None else run_menu.addAction(act)
        edit_menu = menu.addMenu("&Edit")
        edit_menu.addAction(self.copy_action)
        edit_menu.addAction(self.settings_action)
        edit_menu.addAction(self.models_action)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.history_action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("About SepSum", self._about)

    def _start_worker(self, worker: SummaryWorker) -> None:
        self.thread = QThread(self)
        self.thread.setObjectName("summary-worker")
        self.worker = worker
        worker.moveToThread(self.thread)
        self.thread.finished.connect(worker.deleteLater)
        self.runRequested.connect(worker.run)
        self.estimateRequested.connect(worker.estimate)
        worker.stage.connect(self._job_stage)
        worker.documentRead.connect(self._document_read)
        worker.documentLoaded.connect(self._document_loaded)
        worker.progress.connect(self._job_progress)
        worker.text.connect(self._job_text)
        worker.memory.connect(self._job_memory)
        worker.summaryDone.connect(self._job_done)
        worker.notice.connect(self._job_notice)
        worker.failed.connect(self._job_failed)
        worker.passwordNeeded.connect(self._password_needed)
        worker.ended.connect(self._job_ended)
        worker.estimated.connect(self._estimated)
        self.thread.start()

    # queue -------------------------------------------------------------------------------------
    def add_paths(self, paths: list[Path]) -> list[int]:
        """Queue files (folders expand to their documents); return the new job ids."""
        files = expand_paths([Path(p) for p in paths])
        ids = []
        for path in files:
            entry = self.job_queue.add(path.resolve())
            self.queue.add_job(entry.job.id, path)
            ids.append(entry.job.id)
        missing = [Path(p).name for p in paths if not Path(p).exists()]
        if missing:
            self.statusBar().showMessage(f"Not found: {', '.join(missing)}", 8000)
        elif not files:
            self.statusBar().showMessage("Nothing to summarize there: drop PDFs, chat exports or text files", 8000)
        else:
            self.statusBar().showMessage(f"Queued {len(files)} document{'s' if len(files) > 1 else ''}", 4000)
        if ids and self.shown_job is None:
            self._select_job(ids[0])
        self._update_actions()
        return ids

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open documents", self._ui_state.value("last_dir", str(Path.home())),
            "Documents and chat exports (*.pdf *.txt *.md *.markdown *.json *.zip *.html *.csv);;All files (*)")
        if files:
            self._ui_state.setValue("last_dir", str(Path(files[0]).parent))
            self.add_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder",
                                                  self._ui_state.value("last_dir", str(Path.home())))
        if folder:
            self.add_paths([Path(folder)])

    def start(self) -> None:
        """Run the queued jobs one after another."""
        if self.running:
            return
        if not self.job_queue.start():
            self.statusBar().showMessage("Nothing queued: drop documents or press Ctrl+O", 5000)
            return
        self._next()

    def cancel(self) -> None:
        """Stop the running job now (the UI reacts at once; the worker stops within one step)."""
        view = self.job_queue.cancel()
        if view is None:
            return
        self._finish_history(view, "cancelled", "cancelled by the user")
        self.queue.set_status(view.job.id, "cancelled", "cancelled", reason="cancelled: the partial summary is kept")
        if self.shown_job == view.job.id:
            self.summary_view.set_state("cancelled · partial summary kept")
        self.statusBar().showMessage(f"Cancelled {view.job.path.name}", 5000)
        self._update_actions()

    def regenerate(self) -> None:
        """Queue the shown document again (with the settings as they are now) and start."""
        view = self.job_queue.again(self.shown_job) if self.shown_job is not None else None
        if view is None:
            return
        self.queue.add_job(view.job.id, view.job.path)
        self._select_job(view.job.id)
        self.start()

    def remove_selected(self) -> None:
        for job_id in self.job_queue.remove(self.queue.selected_job_ids()):
            self.queue.remove_job(job_id)
        self._update_actions()

    def clear_finished(self) -> None:
        for job_id in self.job_queue.clear_finished():
            self.queue.remove_job(job_id)
        self._update_actions()

    def _next(self) -> None:
        if self._closing:
            return
        step = self.job_queue.advance(self.settings, self.request_overrides)
        if step.run is None:
            if self.current is None:  # the queue ended (or was stopped): nothing runs
                self._memory_timer.stop()
                self._update_actions()
            if step.finished:
                self.statusBar().showMessage(
                    "All done" if not step.failed else f"Done: {step.failed} failed (hover it for the reason)", 8000)
                self.queueFinished.emit(step.failed)
            return
        view = step.run
        view.history_id = self.history.start(
            str(view.job.path), title=view.job.path.name, model=view.job.settings.get("model") or "default",
            settings=dict(view.job.settings))
        self.queue.set_status(view.job.id, "reading", "reading…", percent=0)
        self._select_job(view.job.id)
        self.summary_view.clear({"title": view.job.path.name, "path": str(view.job.path)}, state="starting…")
        self.memory_panel.reset()
        self._memory_timer.start()
        self._sample_process()
        self._update_actions()
        self.runRequested.emit(view.job)

    # worker signals ----------------------------------------------------------------------------
    def _job_stage(self, job_id: int, name: str, detail: str) -> None:
        view = self.job_queue.on_stage(job_id, name)
        if view is None:
            return
        if name == "retrying" and self.shown_job == job_id:
            self.summary_view.clear({"title": view.title, "path": str(view.job.path), "kind": view.kind})
        label = f"{name} {detail}".strip() if name != "reading" else f"reading {detail}"
        if self.shown_job == job_id:
            self.summary_view.set_state(label + "…")
        self._show_progress(view)
        self.statusBar().showMessage(f"{view.job.path.name}: {label}")

    def _document_read(self, job_id: int, document: Any) -> None:
        view = self.job_queue.on_document_read(job_id, document)
        if view is None:
            return
        if view.history_id is not None:
            self.history.update_document(view.history_id, title=view.title, kind=view.kind)
        if self.shown_job == job_id:
            self.document_view.set_document(document)
            self.summary_view.title.setText(view.title)
        item = self.queue.item_for(job_id)
        if item is not None:
            item.setText(0, view.title if len(view.title) < 60 else view.job.path.name)
        self._add_recent(view.job.path)
        self.request_estimate(tokens=int(sum(len(u.text.split()) for u in document.units) * 1.35))

    def _document_loaded(self, job_id: int, event: Any) -> None:
        view = self.job_queue.on_document_loaded(job_id, event.tokens)
        if view is None:
            return
        if self.shown_job == job_id:
            self.document_view.set_tokens(event.tokens)
        for warning in event.warnings:
            self.statusBar().showMessage(f"{view.job.path.name}: {warning}", 8000)
        self._show_progress(view)
        self.request_estimate(tokens=event.tokens)

    def _job_progress(self, job_id: int, event: Any) -> None:
        view = self.job_queue.on_progress(job_id, event.phase, event.tokens_done, event.tokens_total,
                                          event.tokens_per_s)
        if view is None:
            return
        reading = event.phase in READING_PHASES
        self._show_progress(view)
        if self.shown_job == job_id:
            phase = "reading the document" if reading else "writing the summary"
            self.summary_view.set_state(
                f"{phase} · {event.tokens_done:,}/{event.tokens_total:,} tokens · "
                f"{event.tokens_per_s:,.0f} tok/s · ETA {format_duration(event.eta_s)}")
        self.memory_panel.set_speed(reading, event.tokens_per_s, event.eta_s)

    def _job_text(self, job_id: int, text: str) -> None:
        view = self.job_queue.on_text(job_id, text)
        if view is None:
            return
        if self.shown_job == job_id:
            self.summary_view.append(text)
        now = time.monotonic()
        if view.history_id is not None and now - view.saved_at >= HISTORY_SAVE_S:
            self.history.save_partial(view.history_id, view.text)
            view.saved_at = now

    def _job_notice(self, job_id: int, text: str) -> None:
        view = self.job_queue.on_notice(job_id, text)
        if view is not None and self.shown_job == job_id:
            self._show_notice(view)

    def _show_notice(self, view: QueueEntry | None) -> None:
        text = view.notice if view is not None else ""
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    def _job_memory(self, job_id: int, sample: Any) -> None:
        if self.job_queue.on_memory(job_id) is not None:
            self.memory_panel.add_kv_sample(sample.kv_bytes, sample.kv_bytes_full_equivalent)

    def _job_done(self, job_id: int, event: Any) -> None:
        evidence = {"sentences": getattr(event, "sentences", ()), "outline": getattr(event, "outline", ()),
                    "key_passages": getattr(event, "key_passages", ())}
        view = self.job_queue.on_done(job_id, event.summary, event.stats, event.incomplete, evidence)
        if view is None:
            return
        status = "incomplete" if event.incomplete else "done"
        self._finish_history(view, status, "" if status == "done" else "stopped before the end")
        self.queue.set_status(job_id, view.state, status)
        if self.shown_job == job_id:
            self.summary_view.set_result(view.text, view.stats, state=status, **view.evidence)

    def _job_failed(self, job_id: int, message: str, error_type: str) -> None:
        view = self.job_queue.on_failed(job_id, message)
        if view is None:
            return
        self._finish_history(view, "failed", message)
        self.queue.set_status(job_id, "failed", f"failed: {_short(message)}", reason=message)
        if self.shown_job == job_id:
            self.summary_view.show_error(f"Could not summarize {view.job.path.name}", message)
        self.statusBar().showMessage(message, 15000)
        self.show_error(f"Could not summarize {view.job.path.name}", error_advice.for_window(message))

    def _password_needed(self, job_id: int, message: str, wrong: bool) -> None:
        self.job_queue.on_password_needed(job_id, message, wrong)

    def _job_ended(self, job_id: int, seconds: float) -> None:
        ended = self.job_queue.on_ended(job_id)
        view = ended.entry
        if view is not None and ended.was_current:
            self._sample_process()
            view.memory = self.memory_panel.snapshot()
        if view is not None and ended.unfinished:
            self._finish_history(view, ended.unfinished)
            self.queue.set_status(job_id, view.state, view.state)
        if view is not None and ended.ask_password:
            self._ask_password(view)
        log.debug("job %s ended after %.2f s", job_id, seconds)
        self._update_actions()
        self._next()

    def _ask_password(self, view: QueueEntry) -> None:
        if view.history_id is not None:
            self.history.delete(view.history_id)  # not a summary yet: the retry records its own run
            view.history_id = None
        prompt = (f"The password for {view.job.path.name} was wrong. Try again:" if view.wrong_password
                  else f"{view.job.path.name} is encrypted. Enter its password:")
        password, ok = QInputDialog.getText(self, "Password required", prompt, QLineEdit.EchoMode.Password)
        message = self.job_queue.password_given(view, password if ok else None)
        if not message:
            self.queue.set_status(view.job.id, "queued", "queued (password given)")
        else:
            self.queue.set_status(view.job.id, "failed", "failed: needs a password", reason=message)

    def _finish_history(self, view: QueueEntry, status: str, message: str = "") -> None:
        if view.history_id is None:
            return
        self.history.finish(view.history_id, status=status, summary=view.text, stats=view.stats, message=message,
                            evidence=view.evidence)
        view.history_id = None
        self.history_view.refresh()

    def _show_progress(self, view: QueueEntry) -> None:
        if view.state == "reading":
            self.queue.set_status(view.job.id, "reading", "reading…", percent=view.percent)
        else:
            self.queue.set_status(view.job.id, "summarizing", f"summarizing {view.percent:.0f} %",
                                  percent=view.percent)

    def _sample_process(self) -> None:
        try:
            rss, alloc, reserved = process_memory()
        except Exception as exc:  # sampling is best effort; never break the run over it
            log.debug("memory sample failed: %s", exc)
            return
        self.memory_panel.add_process_sample(rss, alloc, reserved)

    # estimate ----------------------------------------------------------------------------------
    def request_estimate(self, tokens: int | None = None) -> None:
        params = dict(self.settings)
        params["tokens"] = tokens or self._estimate.get("tokens") or 4096
        self.estimateRequested.emit(params)

    def _estimated(self, result: dict[str, Any]) -> None:
        if "error" in result:
            self.memory_panel.set_estimate(result["error"], None)
            return
        self._estimate = result
        estimate = result["estimate"]
        where = "GPU memory" if str(estimate.device).startswith("cuda") else "RAM"
        text = (f"Estimate for {estimate.model} on {estimate.device} ({estimate.quant}, {estimate.dtype}), "
                f"{result['tokens']:,} tokens: {estimate.describe()}; {format_bytes(result['free'])} {where} free")
        if not result["fits"]:
            text += ": it will not fit. Choose 4-bit quantization, a smaller cache or a smaller model."
        self.memory_panel.set_estimate(text, bool(result["fits"]))
        self.document_view.set_limits(result.get("max_context"), result.get("cache_budget"))

    # selection and display ---------------------------------------------------------------------
    def _select_job(self, job_id: int) -> None:
        item = self.queue.item_for(job_id)
        if item is not None:
            self.queue.setCurrentItem(item)
        self._show_job(job_id)

    def _selection_changed(self) -> None:
        ids = self.queue.selected_job_ids()
        if ids:
            self._show_job(ids[0])

    def _show_job(self, job_id: int) -> None:
        view = self.jobs.get(job_id)
        if view is None or self.shown_job == job_id:
            return
        self.shown_job = job_id
        self._show_notice(view)
        meta = {"title": view.title, "path": str(view.job.path), "kind": view.kind}
        if view.state in ("done", "cancelled"):
            self.summary_view.set_result(view.text, view.stats, meta, state=view.state, **view.evidence)
        elif view.state == "failed":
            self.summary_view.clear(meta)
            self.summary_view.show_error(f"Could not summarize {view.job.path.name}", view.message)
        else:
            self.summary_view.clear(meta, state=view.message or view.state)
            if view.text:
                self.summary_view.append(view.text)
        if view.memory is not None and view is not self.current:
            self.memory_panel.restore(view.memory)
        if view.document is not None:
            self.document_view.set_document(view.document)
            if view.tokens:
                self.document_view.set_tokens(view.tokens)
        else:
            self.document_view.clear()
        self._update_actions()

    def show_history_entry(self, entry: Any) -> None:
        state = {"done": "from history"}.get(entry.status, f"from history · {entry.status}")
        meta = {"title": entry.title or Path(entry.path).name, "path": entry.path, "kind": entry.kind,
                "model": entry.model, "settings": entry.settings}
        if entry.status == "failed":
            self.summary_view.clear(meta)
            self.summary_view.show_error(f"Could not summarize {Path(entry.path).name}", entry.message)
        else:
            self.summary_view.set_result(entry.summary, entry.stats, meta, state=state, **entry.evidence_objects())
        self.shown_job = None
        self._show_notice(None)

    def show_source_span(self, start: int, end: int) -> None:
        """A citation, outline entry or key passage was clicked: show its span in the Document tab, when
        the document shown is the summary's (a summary reopened from History may be of another one)."""
        wanted = self.summary_view.meta().get("path")
        shown = self.document_view.source()
        if wanted and shown and not _same_file(wanted, shown):
            self.statusBar().showMessage(f"That passage is in {Path(wanted).name}, not in the document shown: "
                                         "add that file again to see it", 8000)
            return
        self.tabs.setCurrentWidget(self.document_view)
        if not self.document_view.show_span(start, end):
            self.statusBar().showMessage("That passage is not in the document shown", 5000)

    def show_error(self, title: str, message: str) -> None:
        """A readable, non-blocking dialog (skipped in automation, where the status bar shows it)."""
        if not self.show_error_dialogs:
            return
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAccessibleName("Error")
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box

    # settings ----------------------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == SettingsDialog.DialogCode.Accepted:
            self.apply_settings(dialog.values())

    def open_models(self) -> None:
        """The Get models dialog (non-modal; one at a time); choosing a model there applies and saves it."""
        from app.gui.models_page import ModelsDialog

        if getattr(self, "models_dialog", None) is not None:
            self.models_dialog.raise_()
            return
        dialog = ModelsDialog(self.settings, self, show_error_dialogs=self.show_error_dialogs)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.settingsChosen.connect(lambda values: self.apply_settings(values, save=True))
        dialog.destroyed.connect(lambda: setattr(self, "models_dialog", None))
        self.closed.connect(dialog.shutdown)  # a download stops (kept for resume) when the window closes
        self.models_dialog = dialog
        dialog.show()

    def apply_settings(self, values: dict[str, Any], save: bool = False) -> None:
        self.settings = dict(values)
        if save:
            settings_schema.save(self.settings)
        self.preset_combo.setCurrentText(preset_of(self.settings))
        self.length_combo.setCurrentText(self.settings.get("length") or "medium")
        self._show_model_label()
        self.request_estimate()

    def _preset_chosen(self, name: str) -> None:
        if name in PRESETS:
            self.apply_settings({**self.settings, **PRESETS[name]}, save=True)
        else:
            self.open_settings()

    def _length_chosen(self, length: str) -> None:
        self.apply_settings({**self.settings, "length": length}, save=True)

    def _show_model_label(self) -> None:
        from app.engine.registry import default_label

        model = self.settings.get("model") or default_label()
        self.model_label.setText(f"{model} · {self.settings.get('device', 'auto')} · "
                                 f"{self.settings.get('quant', 'none')} · cache {self.settings.get('cache')}")

    # window ------------------------------------------------------------------------------------
    def _update_actions(self) -> None:
        self.start_action.setEnabled(self.job_queue.has_queued() and not self.running)
        self.cancel_action.setEnabled(self.current is not None and not self.current.job.cancel.is_set())
        has_text = bool(self.summary_view.text.strip())
        self.copy_action.setEnabled(has_text)
        self.export_action.setEnabled(has_text)
        self.regenerate_action.setEnabled(self.shown_job is not None)
        self.summary_view.regenerate_button.setEnabled(self.shown_job is not None and not self.running)

    def _add_recent(self, path: Path) -> None:
        recent = [str(path)] + [p for p in self._recent_paths() if p != str(path)]
        self._ui_state.setValue("recent", recent[:MAX_RECENT])
        self.recent.set_paths(recent[:MAX_RECENT])

    def _recent_paths(self) -> list[str]:
        value = self._ui_state.value("recent", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def _restore_state(self) -> None:
        geometry = self._ui_state.value("geometry", QByteArray())  # a default: never a None QVariant
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            screen = QGuiApplication.primaryScreen()
            available = screen.availableGeometry() if screen is not None else None
            width = min(1280, int(available.width() * 0.9)) if available else 1280
            height = min(820, int(available.height() * 0.9)) if available else 820
            self.resize(width, height)
        for key, splitter in (("main_split", self.main_split), ("right_split", self.right_split)):
            state = self._ui_state.value(key, QByteArray())
            if not state.isEmpty():
                splitter.restoreState(state)
        self.recent.set_paths(self._recent_paths())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        """Cancel a running job, wait for the worker thread to stop, then save the window state."""
        self._closing = True
        if self.current is not None:
            self.cancel()
        self.job_queue.running = False
        self._memory_timer.stop()
        self.thread.quit()
        if not self.thread.wait(30_000):
            log.warning("the worker did not stop within 30 s")
        self._ui_state.setValue("geometry", self.saveGeometry())
        self._ui_state.setValue("main_split", self.main_split.saveState())
        self._ui_state.setValue("right_split", self.right_split.saveState())
        self._ui_state.sync()
        super().closeEvent(event)
        self.closed.emit()

    def _about(self) -> None:
        QMessageBox.about(self, "About SepSum",
                          f"<b>SepSum {__version__}</b><br>Offline summaries of long documents and chat exports "
                          "through a SepLLM compressed KV cache.")


def _caption(text: str, parent: QWidget, muted: bool = False) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName("muted" if muted else "cardTitle")
    return label


def _same_file(first: str, second: str) -> bool:
    try:
        return Path(first).resolve() == Path(second).resolve()
    except OSError:
        return first == second


def _short(message: str, limit: int = 60) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _load_settings() -> dict[str, Any]:
    try:
        return settings_schema.load()
    except settings_schema.SettingsError as exc:
        log.warning("%s; using the defaults", exc)
        return settings_schema.defaults()
