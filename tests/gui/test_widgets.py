"""The app's widgets without a model: drops, queue, throttled Markdown, export, memory chart, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QMessageBox, QSpinBox

from app import settings as settings_schema
from app.gui.document_view import ContextMeter
from app.gui.memory_panel import MemoryPanel, format_bytes, format_duration
from app.gui.queue_panel import DropZone, expand_paths
from app.gui.settings_dialog import PRESETS, SettingsDialog, preset_of
from app.gui.summary_view import SummaryView, _describe_stats, export_summary
from tests.gui.conftest import drop_files


def test_drop_zone_takes_file_urls_from_a_real_drop(qtbot, shared_data):
    zone = DropZone()
    qtbot.addWidget(zone)
    zone.show()
    pdf = shared_data / "pdfs" / "pl_scotus-transcript-p1.pdf"
    with qtbot.waitSignal(zone.pathsDropped) as blocker:
        assert drop_files(zone, [pdf])
    assert blocker.args == [[pdf]]


def test_folders_expand_to_documents_but_a_slack_export_stays_whole(shared_data, tmp_path):
    whatsapp = expand_paths([shared_data / "chats" / "whatsapp"])
    assert len(whatsapp) > 20 and all(p.suffix == ".txt" for p in whatsapp)
    slack = next(p for p in (shared_data / "chats" / "slack").rglob("channels.json")).parent
    assert expand_paths([slack]) == [slack]
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("x")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    assert expand_paths([tmp_path, tmp_path / "missing.pdf"]) == []


def test_streamed_markdown_is_rendered_at_most_about_ten_times_a_second(qtbot):
    view = SummaryView()
    qtbot.addWidget(view)
    view.clear({"title": "Report"})
    for i in range(200):
        view.append(f"- point {i}\n")
    assert view.renders == 0  # nothing rendered synchronously
    qtbot.waitUntil(lambda: view.renders >= 1, timeout=1000)
    qtbot.wait(350)
    assert 1 <= view.renders <= 2  # one burst of appends, one render (two if a tick split it)
    html = view.browser.toHtml()
    assert "point 199" in html and "<li" in html  # Markdown list, not raw dashes
    assert view.copy_button.isEnabled()
    view.copy()
    assert QGuiApplication.clipboard().text() == view.text


def test_export_md_txt_json_with_stats(tmp_path):
    summary = "- **Alpha** met Beta\n- They agreed"
    stats = {"input_tokens": 1200, "kv_bytes_peak": 10, "kv_bytes_full_equivalent": 40}
    meta = {"title": "Meeting", "path": "/x/meeting.txt"}
    md = export_summary(tmp_path / "s.md", summary, stats, meta).read_text()
    assert md.startswith("# Meeting\n") and "**Alpha**" in md
    txt = export_summary(tmp_path / "s.txt", summary, stats, meta).read_text()
    assert "Alpha met Beta" in txt and "**" not in txt
    data = json.loads(export_summary(tmp_path / "s.json", summary, stats, meta).read_text())
    assert data["summary"] == summary and data["stats"] == stats and data["title"] == "Meeting"
    with pytest.raises(ValueError, match="unknown export format"):
        export_summary(tmp_path / "s.docx", summary, stats, meta)


def test_stats_line_names_the_decode_threads():
    stats = {"prefill_tokens_per_s": 1004.2, "decode_tokens_per_s": 58.4, "decode_threads": 1}
    assert "1,004 tok/s read · 58 tok/s write (1 thread)" in _describe_stats(stats)
    assert "write (2 threads)" in _describe_stats({**stats, "decode_threads": 2})
    assert "write (1 thread, int4 weights)" in _describe_stats({**stats, "decode_weights": "int4"})
    assert _describe_stats({"decode_tokens_per_s": 3.25}) == "3.2 tok/s write"


def test_stats_line_says_which_model_variant_wrote_the_summary():
    stats = {"seconds": 2.0, "model": "smollm2-135m-instruct", "model_variant": "base"}
    assert _describe_stats(stats).endswith("· smollm2-135m-instruct")
    adapted = _describe_stats({**stats, "model_variant": "SepLLM-adapted (smollm2-135m-instruct)"})
    assert adapted.endswith("· SepLLM-adapted (smollm2-135m-instruct)")


def test_memory_panel_draws_kv_against_full_and_process_series(qtbot):
    panel = MemoryPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 320)
    panel.show()
    for i in range(1, 6):
        panel.add_kv_sample(min(i, 2) * 1_000_000, i * 1_000_000)
        panel.add_process_sample(800_000_000 + i, 50_000_000, 64_000_000)
    panel.set_speed(False, 31.4, 65)
    assert panel.samples_received == 10
    assert panel.value_text("kv") == format_bytes(2_000_000)
    assert panel.value_text("saved").startswith("60 %")
    assert panel.value_text("gpu") == "47.7 MiB / 61.0 MiB"
    assert panel.value_text("speed") == "31 tok/s writing" and panel.value_text("eta") == "1:05"
    image = panel.chart.grab().toImage()
    colors = {image.pixelColor(x, y).name() for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    from app.gui import theme

    c = theme.colors()
    assert c.kv_held.lower() in colors or any(_near(col, c.kv_held) for col in colors)
    assert format_duration(None) == "–" and format_duration(3725) == "1:02:05"


def _near(color: str, target: str, tolerance: int = 24) -> bool:
    a = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(target[i:i + 2], 16) for i in (1, 3, 5)]
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_context_meter_compares_document_with_model_and_cache(qtbot):
    meter = ContextMeter()
    qtbot.addWidget(meter)
    meter.set_values(20_000, exact=True, trained_context=8192, cache_budget=2048)
    assert meter.summary() == ("20,000 document tokens · model trained on 8,192 · cache keeps at most 2,048 · "
                               "9.8× compression")
    meter.set_values(900, exact=False, trained_context=8192, cache_budget=None)
    assert meter.summary().startswith("≈900 document tokens") and "full attention" in meter.summary()
    assert not meter.grab().isNull()


def test_settings_dialog_is_built_from_the_schema_and_saves(qtbot, isolated_home):
    dialog = SettingsDialog(settings_schema.defaults())
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == {s.name for s in settings_schema.SCHEMA}
    for setting in settings_schema.SCHEMA:
        assert dialog.editors[setting.name].toolTip() == setting.help
    assert dialog.values() == settings_schema.defaults()
    assert dialog.preset.currentText() == "Balanced"

    dialog.preset.setCurrentText("Maximum memory saving")
    values = dialog.values()
    assert {k: values[k] for k in PRESETS["Maximum memory saving"]} == PRESETS["Maximum memory saving"]
    budget = dialog.editors["cache_max_entries"]
    assert isinstance(budget, QSpinBox)
    budget.setValue(640)
    assert dialog.preset.currentText() == "Custom"
    length = dialog.editors["length"]
    assert isinstance(length, QComboBox)
    length.setCurrentText("short")
    dialog.accept()
    saved = settings_schema.load()
    assert saved["length"] == "short" and saved["cache_max_entries"] == 640 and saved["cache_local"] == 160
    assert preset_of(saved) == "Custom"


def test_settings_dialog_imports_a_model_folder(qtbot, installed_home, default_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "my-model"
    folder.mkdir()
    for file in Path(default_model_dir).iterdir():
        (folder / file.name).symlink_to(file)
    dialog = SettingsDialog(settings_schema.defaults())
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.modelImported, timeout=60_000) as blocker:
        dialog.add_model(folder)
    assert blocker.args == ["my-model"]
    assert dialog.values()["model"] == "my-model"
    from app.engine import registry

    assert registry.load()["my-model"].source == "folder"

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warnings.append(text))
    (tmp_path / "weights.bin").write_bytes(b"x")
    dialog.add_model(tmp_path / "weights.bin")
    qtbot.waitUntil(lambda: bool(warnings), timeout=30_000)
    assert "weights.bin" in warnings[0] and dialog.import_button.isEnabled()


def test_window_shortcuts_accessible_names_and_estimate(qtbot, installed_home):
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QPlainTextEdit, QTextEdit

    from app.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    shortcuts = {a.text(): {s.toString() for s in a.shortcuts()} for a in window.actions()}
    assert "Ctrl+Return" in shortcuts["Start"] and shortcuts["Cancel"] == {"Esc"}
    assert shortcuts["Open…"] == {QKeySequence(QKeySequence.StandardKey.Open).toString()}
    assert QKeySequence(QKeySequence.StandardKey.Copy).toString() in shortcuts["Copy"]
    unnamed = []
    for cls in (QComboBox, QAbstractItemView, QTextEdit, QPlainTextEdit, QAbstractButton):
        for widget in window.findChildren(cls):
            if widget.isVisibleTo(window) and widget.focusPolicy() != widget.focusPolicy().NoFocus:
                name = widget.accessibleName() or (widget.text() if isinstance(widget, QAbstractButton) else "")
                if not name and not isinstance(widget.parent(), QComboBox):
                    unnamed.append(f"{cls.__name__} {widget.objectName()}")
    assert unnamed == []
    # The estimate for the default model arrives from the worker thread.
    qtbot.waitUntil(lambda: "Estimate for" in window.memory_panel.estimate_label.text(), timeout=60_000)
    assert "weights" in window.memory_panel.estimate_label.text()
    assert window.document_view.meter.trained_context == 8192
    window.close()
    assert window.thread.isFinished()


def test_preview_marks_dropped_media_messages(shared_data):
    """Media placeholders become empty messages (dropped for the model); the preview says so."""
    from app.gui.document_view import preview_text
    from app.ingest.detect import load_document

    doc = load_document(shared_data / "chats" / "whatsapp" / "languages__english_android.txt")
    empty = [unit for unit in doc.units if unit.author and not unit.text]
    assert empty
    preview = preview_text(doc)
    assert preview.count("‹media or deleted message, not sent to the model›") >= min(len(empty), 5)
    assert "media or deleted" not in doc.text_for_model()
