"""The main window: queue on the left, summary / document / history tabs and the memory panel on the right.

All model work runs in one :class:`SummaryWorker` on a QThread. The window owns the queue of
:class:`Job` objects, translates worker signals into widget updates, saves what streams into the
history every couple of seconds, and cancels and waits for the thread when it closes.
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
from app.gui import theme
from app.gui.document_view import DocumentView
from app.gui.history_view import HistoryView
from app.gui.memory_panel import MemoryPanel, format_bytes, format_duration
from app.gui.queue_panel import DropZone, QueueList, RecentList, expand_paths, paths_from_mime
from app.gui.settings_dialog import PRESETS, SettingsDialog, preset_of
from app.gui.summary_view import SummaryView
from app.gui.worker import Job, SummaryWorker
from app.history import History

log = logging.getLogger(__name__)

HISTORY_SAVE_S = 2.0
PROCESS_SAMPLE_MS = 250
MAX_RECENT = 12
READING_PHASES = ("prefill", "reading")  # the core says prefill/decode, the pipeline reading/writing
PREFILL_SHARE = 85.0  # percent of the bar for reading the document; the rest for writing the summary


def process_memory() -> tuple[int, int | None, int | None]:
    """(RSS, GPU allocated, GPU reserved) in bytes; the GPU values are None while CUDA is not in use."""
    from app.engine.memory import sample_memory

    sample = sample_memory()
    alloc, reserved = sample.get("gpu_allocated_bytes", 0), sample.get("gpu_reserved_bytes", 0)
    if not alloc and not reserved:
        return int(sample["rss_bytes"]), None, None
    return int(sample["rss_bytes"]), int(alloc), int(reserved)


class JobView:
    """What the window remembers about one job (shown again when its row is selected)."""

    def __init__(self, job: Job):
        self.job = job
        self.state = "queued"
        self.document: Any = None
        self.tokens: int | None = None
        self.text = ""
        self.text_updates = 0  # streamed batches received (the worker sends at most ~20 a second)
        self.kv_samples = 0
        self.tokens_per_s = 0.0  # the latest reading or writing speed
        self.stats: dict[str, Any] = {}
        self.message = ""
        self.percent = 0.0
        self.history_id: int | None = None
        self.memory: Any = None  # the memory panel's snapshot once the job ended
        self.saved_at = 0.0
        self.password_message: str | None = None
        self.wrong_password = False
        self.title = job.path.name
        self.kind = ""
        self.notice = ""  # the pipeline's line before the summary (e.g. another language than the document's)
        self.evidence: dict[str, Any] = {}  # SummaryDone's sentences, key_passages, outline (SummaryView.set_result)


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
        self.jobs: dict[int, JobView] = {}
        self.current: JobView | None = None
        self.running = False
        self.shown_job: int | None = None
        self.error_box: QMessageBox | None = None
        self._failed = 0
        self._queue_active = False  # a started queue that has not reported queueFinished yet
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
        worker.started.connect(self._job_started)
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
            job = Job(path=path.resolve())
            self.jobs[job.id] = JobView(job)
            self.queue.add_job(job.id, path)
            ids.append(job.id)
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
        if not any(view.state == "queued" for view in self.jobs.values()):
            self.statusBar().showMessage("Nothing queued: drop documents or press Ctrl+O", 5000)
            return
        self.running = True
        self._queue_active = True
        self._failed = 0
        self._next()

    def cancel(self) -> None:
        """Stop the running job now (the UI reacts at once; the worker stops within one step)."""
        view = self.current
        self.running = False
        if view is None:
            return
        view.job.cancel.set()
        self._finish_history(view, "cancelled", "cancelled by the user")
        view.state = "cancelled"
        self.queue.set_status(view.job.id, "cancelled", "cancelled", reason="cancelled: the partial summary is kept")
        if self.shown_job == view.job.id:
            self.summary_view.set_state("cancelled · partial summary kept")
        self.statusBar().showMessage(f"Cancelled {view.job.path.name}", 5000)
        self._update_actions()

    def regenerate(self) -> None:
        """Queue the shown document again (with the settings as they are now) and start."""
        view = self.jobs.get(self.shown_job) if self.shown_job is not None else None
        if view is None:
            return
        job = Job(path=view.job.path, password=view.job.password)
        self.jobs[job.id] = JobView(job)
        self.queue.add_job(job.id, job.path)
        self._select_job(job.id)
        self.start()

    def remove_selected(self) -> None:
        for job_id in self.queue.selected_job_ids():
            view = self.jobs.get(job_id)
            if view is None or view is self.current:
                continue
            self.queue.remove_job(job_id)
            del self.jobs[job_id]
        self._update_actions()

    def clear_finished(self) -> None:
        for job_id, view in list(self.jobs.items()):
            if view.state in ("done", "failed", "cancelled"):
                self.queue.remove_job(job_id)
                del self.jobs[job_id]
        self._update_actions()

    def _next(self) -> None:
        if self.current is not None or self._closing:
            return  # the running job's ended signal calls us again
        pending = [v for v in self.jobs.values() if v.state == "queued"]
        if not self.running or not pending:
            was_active, self._queue_active = self._queue_active, False
            self.running = False
            self._memory_timer.stop()
            self._update_actions()
            if was_active:
                self.statusBar().showMessage(
                    "All done" if not self._failed else f"Done: {self._failed} failed (hover it for the reason)", 8000)
                self.queueFinished.emit(self._failed)
            return
        view = pending[0]
        view.job.settings = self.request_settings()
        view.job.cancel.clear()
        view.state = "reading"
        view.text, view.stats, view.message, view.notice = "", {}, "", ""
        view.percent = 0.0
        view.history_id = self.history.start(
            str(view.job.path), title=view.job.path.name, model=view.job.settings.get("model") or "default",
            settings={k: v for k, v in view.job.settings.items() if k != "password"})
        self.current = view
        self.queue.set_status(view.job.id, "reading", "reading…", percent=0)
        self._select_job(view.job.id)
        self.summary_view.clear({"title": view.job.path.name, "path": str(view.job.path)}, state="starting…")
        self.memory_panel.reset()
        self._memory_timer.start()
        self._sample_process()
        self._update_actions()
        self.runRequested.emit(view.job)

    def request_settings(self) -> dict[str, Any]:
        """The settings a run uses: the saved ones, the cache budget dict, and any overrides."""
        values = dict(self.settings)
        values["cache_budget"] = settings_schema.cache_budget(values)
        values.update(self.request_overrides)
        return values

    # worker signals ----------------------------------------------------------------------------
    def _live(self, job_id: int) -> JobView | None:
        """The job if it is the running one and not cancelled (late events of a cancelled job are dropped)."""
        view = self.jobs.get(job_id)
        if view is None or view is not self.current or view.job.cancel.is_set():
            return None
        return view

    def _job_started(self, job_id: int) -> None:
        pass

    def _job_stage(self, job_id: int, name: str, detail: str) -> None:
        view = self._live(job_id)
        if view is None:
            return
        if name != "reading" and view.state == "reading":
            view.state = "summarizing"
        if name == "retrying":  # the flagged text must not stay on screen while the retry streams
            view.text = ""
            if self.shown_job == job_id:
                self.summary_view.clear({"title": view.title, "path": str(view.job.path), "kind": view.kind})
        label = f"{name} {detail}".strip() if name != "reading" else f"reading {detail}"
        if self.shown_job == job_id:
            self.summary_view.set_state(label + "…")
        self._show_progress(view)
        self.statusBar().showMessage(f"{view.job.path.name}: {label}")

    def _document_read(self, job_id: int, document: Any) -> None:
        view = self.jobs.get(job_id)
        if view is None:
            return
        view.document = document
        view.title = document.title or view.job.path.name
        view.kind = document.kind
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
        view = self._live(job_id)
        if view is None:
            return
        view.tokens = event.tokens
        view.state = "summarizing"
        if self.shown_job == job_id:
            self.document_view.set_tokens(event.tokens)
        for warning in event.warnings:
            self.statusBar().showMessage(f"{view.job.path.name}: {warning}", 8000)
        self._show_progress(view)
        self.request_estimate(tokens=event.tokens)

    def _job_progress(self, job_id: int, event: Any) -> None:
        view = self._live(job_id)
        if view is None:
            return
        view.state = "summarizing"
        fraction = event.tokens_done / event.tokens_total if event.tokens_total else 0.0
        reading = event.phase in READING_PHASES
        percent = PREFILL_SHARE * fraction if reading else PREFILL_SHARE + (100 - PREFILL_SHARE) * fraction
        view.percent = max(view.percent, min(percent, 99.0))
        view.tokens_per_s = event.tokens_per_s
        self._show_progress(view)
        if self.shown_job == job_id:
            phase = "reading the document" if reading else "writing the summary"
            self.summary_view.set_state(
                f"{phase} · {event.tokens_done:,}/{event.tokens_total:,} tokens · "
                f"{event.tokens_per_s:,.0f} tok/s · ETA {format_duration(event.eta_s)}")
        self.memory_panel.set_speed(reading, event.tokens_per_s, event.eta_s)

    def _job_text(self, job_id: int, text: str) -> None:
        view = self._live(job_id)
        if view is None:
            return
        view.text += text
        view.text_updates += 1
        if self.shown_job == job_id:
            self.summary_view.append(text)
        now = time.monotonic()
        if view.history_id is not None and now - view.saved_at >= HISTORY_SAVE_S:
            self.history.save_partial(view.history_id, view.text)
            view.saved_at = now

    def _job_notice(self, job_id: int, text: str) -> None:
        view = self.jobs.get(job_id)
        if view is None:
            return
        view.notice = text
        if self.shown_job == job_id:
            self._show_notice(view)

    def _show_notice(self, view: JobView | None) -> None:
        text = view.notice if view is not None else ""
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    def _job_memory(self, job_id: int, sample: Any) -> None:
        view = self._live(job_id)
        if view is None:
            return
        view.kv_samples += 1
        self.memory_panel.add_kv_sample(sample.kv_bytes, sample.kv_bytes_full_equivalent)

    def _job_done(self, job_id: int, event: Any) -> None:
        view = self._live(job_id)
        if view is None:
            return
        view.text = event.summary or view.text
        view.stats = dict(event.stats)
        view.evidence = {"sentences": getattr(event, "sentences", ()), "outline": getattr(event, "outline", ()),
                         "key_passages": getattr(event, "key_passages", ())}
        status = "incomplete" if event.incomplete else "done"
        view.state = "cancelled" if event.incomplete else "done"
        view.percent = 100.0
        self._finish_history(view, status, "" if status == "done" else "stopped before the end")
        self.queue.set_status(job_id, view.state, "done" if status == "done" else "incomplete")
        if self.shown_job == job_id:
            self.summary_view.set_result(view.text, view.stats, state=status, **view.evidence)

    def _job_failed(self, job_id: int, message: str, error_type: str) -> None:
        view = self.jobs.get(job_id)
        if view is None or view.job.cancel.is_set():
            return
        view.state = "failed"
        view.message = message
        self._failed += 1
        self._finish_history(view, "failed", message)
        self.queue.set_status(job_id, "failed", f"failed: {_short(message)}", reason=message)
        if self.shown_job == job_id:
            self.summary_view.show_error(f"Could not summarize {view.job.path.name}", message)
        self.statusBar().showMessage(message, 15000)
        self.show_error(f"Could not summarize {view.job.path.name}", message)

    def _password_needed(self, job_id: int, message: str, wrong: bool) -> None:
        view = self.jobs.get(job_id)
        if view is not None:
            view.password_message = message
            view.wrong_password = wrong or view.job.password is not None

    def _job_ended(self, job_id: int, seconds: float) -> None:
        view = self.jobs.get(job_id)
        if view is not None and view is self.current:
            self.current = None
            self._sample_process()
            view.memory = self.memory_panel.snapshot()
            if view.state in ("reading", "summarizing") and view.password_message is None:
                # The pipeline ended without SummaryDone or Failed: keep what streamed, marked incomplete.
                view.state = "cancelled" if view.job.cancel.is_set() else "done"
                self._finish_history(view, "incomplete" if view.job.cancel.is_set() else "done")
                self.queue.set_status(job_id, view.state, view.state)
            if view.password_message is not None:
                self._ask_password(view)
        elif view is not None and view.password_message is not None:
            self._ask_password(view)
        log.debug("job %s ended after %.2f s", job_id, seconds)
        self._update_actions()
        self._next()

    def _ask_password(self, view: JobView) -> None:
        message, view.password_message = view.password_message, None
        if view.history_id is not None:
            self.history.delete(view.history_id)  # not a summary yet: the retry records its own run
            view.history_id = None
        prompt = (f"The password for {view.job.path.name} was wrong. Try again:" if view.wrong_password
                  else f"{view.job.path.name} is encrypted. Enter its password:")
        password, ok = QInputDialog.getText(self, "Password required", prompt, QLineEdit.EchoMode.Password)
        if ok and password:
            view.job.password = password
            view.state = "queued"
            self.queue.set_status(view.job.id, "queued", "queued (password given)")
        else:
            view.state = "failed"
            view.message = message or "encrypted: no password given"
            self._failed += 1
            self.queue.set_status(view.job.id, "failed", "failed: needs a password", reason=view.message)

    def _finish_history(self, view: JobView, status: str, message: str = "") -> None:
        if view.history_id is None:
            return
        self.history.finish(view.history_id, status=status, summary=view.text, stats=view.stats, message=message)
        view.history_id = None
        self.history_view.refresh()

    def _show_progress(self, view: JobView) -> None:
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

    def show_source_span(self, start: int, end: int) -> None:
        """A citation, outline entry or key passage was clicked: show its span in the Document tab."""
        self.tabs.setCurrentWidget(self.document_view)
        if not self.document_view.show_span(start, end):
            self.statusBar().showMessage("That passage is not in the document shown", 5000)

    def show_history_entry(self, entry: Any) -> None:
        state = {"done": "from history"}.get(entry.status, f"from history · {entry.status}")
        meta = {"title": entry.title or Path(entry.path).name, "path": entry.path, "kind": entry.kind,
                "model": entry.model, "settings": entry.settings}
        if entry.status == "failed":
            self.summary_view.clear(meta)
            self.summary_view.show_error(f"Could not summarize {Path(entry.path).name}", entry.message)
        else:
            self.summary_view.set_result(entry.summary, entry.stats, meta, state=state)
        self.shown_job = None
        self._show_notice(None)

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
        queued = any(v.state == "queued" for v in self.jobs.values())
        self.start_action.setEnabled(queued and not self.running)
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
        self.running = False
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


def _short(message: str, limit: int = 60) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _load_settings() -> dict[str, Any]:
    try:
        return settings_schema.load()
    except settings_schema.SettingsError as exc:
        log.warning("%s; using the defaults", exc)
        return settings_schema.defaults()
