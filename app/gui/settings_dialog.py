"""Settings dialog, built from the one settings schema (:mod:`app.settings`) the CLI also uses.

Each :class:`app.settings.Setting` becomes an editor chosen by its type and choices; its help is
the tooltip. The model field lists the registry (default model, imported folders and GGUF files)
and has an Import button. The cache tab adds presets (Balanced, Maximum memory saving, Full
attention) that fill the advanced budgets; editing a budget switches the preset to Custom.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings as settings_schema

GROUP_TITLES = {"model": "Model", "summary": "Summary", "cache": "Cache"}
LABELS = {
    "model": "Model", "device": "Device", "quant": "Quantization", "decode_weights": "Writing weights (CPU)",
    "cache": "Cache policy", "mode": "Strategy",
    "length": "Length", "style": "Format", "kind": "Document kind", "language": "Language",
    "cache_initial": "Initial tokens", "cache_separators": "Separator tokens", "cache_local": "Recent window",
    "cache_max_entries": "Max entries", "chunk_size": "Chunk size", "notes_every": "Notes every",
}
# Presets fill the cache settings; None leaves a budget at sepllm_core's default.
PRESETS: dict[str, dict[str, Any]] = {
    "Balanced": {"cache": "sepllm", "cache_initial": None, "cache_separators": None, "cache_local": None,
                 "cache_max_entries": None, "chunk_size": None},
    "Maximum memory saving": {"cache": "sepllm", "cache_initial": 4, "cache_separators": 96, "cache_local": 160,
                              "cache_max_entries": 512, "chunk_size": 256},
    "Full attention": {"cache": "full", "cache_initial": None, "cache_separators": None, "cache_local": None,
                       "cache_max_entries": None, "chunk_size": None},
}
CUSTOM = "Custom"
DEFAULT_TEXT = "default"
LANGUAGES = ("", "English", "French", "German", "Spanish", "Italian", "Portuguese", "Russian", "Chinese",
             "Japanese", "Arabic", "Polish", "Dutch")


def preset_of(values: dict[str, Any]) -> str:
    """The preset name matching the cache settings in ``values``, or ``Custom``."""
    for name, preset in PRESETS.items():
        if all(values.get(key) == value for key, value in preset.items()):
            return name
    return CUSTOM


def model_choices() -> list[tuple[str, str | None]]:
    """(label, value) pairs: the default model first, then every registered model."""
    from app.engine import registry

    choices: list[tuple[str, str | None]] = [(f"Default model ({registry.default_label()})", None)]
    try:
        entries = registry.load()
    except Exception:  # an unreadable registry must not block the dialog; the run reports it
        entries = {}
    for name, entry in sorted(entries.items()):
        if entry.source == "default":
            continue
        kind = {"gguf": "GGUF", "folder": "folder", "adapter": "adapter"}.get(entry.source, entry.source)
        choices.append((f"{name}  ({kind})", name))
    return choices


class SettingsDialog(QDialog):
    """Edit the settings; ``values()`` returns them validated; OK saves them to settings.json."""

    modelImported = Signal(str)

    def __init__(self, values: dict[str, Any] | None = None, parent: QWidget | None = None,
                 schema: tuple[settings_schema.Setting, ...] = settings_schema.SCHEMA):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.setMinimumWidth(520)
        self._schema = schema
        self._initial = dict(values if values is not None else settings_schema.load())
        self.editors: dict[str, QWidget] = {}
        self._updating_preset = False

        tabs = QTabWidget(self)
        self.tabs = tabs
        forms: dict[str, QFormLayout] = {}
        for group in ("model", "summary", "cache"):
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
            forms[group] = form
            tabs.addTab(page, GROUP_TITLES[group])
        self.preset = QComboBox(self)
        self.preset.addItems([*PRESETS, CUSTOM])
        self.preset.setAccessibleName("Cache preset")
        self.preset.setToolTip("Balanced: the default bounded cache. Maximum memory saving: a small cache. "
                               "Full attention: keep every token (memory grows with the document).")
        forms["cache"].addRow("Preset", self.preset)
        for setting in schema:
            editor = self._editor(setting)
            self.editors[setting.name] = editor
            label = QLabel(LABELS.get(setting.name, setting.name.replace("_", " ").capitalize()))
            label.setBuddy(editor)
            label.setToolTip(setting.help)
            row: QWidget = editor
            if setting.name == "model":
                row = self._model_row(editor)
            forms.get(setting.group, forms["summary"]).addRow(label, row)
        self.set_values(self._initial)
        self.preset.currentTextChanged.connect(self._apply_preset)
        for name in PRESETS["Balanced"]:
            if name in self.editors:
                _changed_signal(self.editors[name]).connect(self._budget_edited)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.set_values(settings_schema.defaults()))
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)

    # editors -----------------------------------------------------------------------------------
    def _editor(self, setting: settings_schema.Setting) -> QWidget:
        if setting.name == "model":
            editor = QComboBox(self)
            for label, value in model_choices():
                editor.addItem(label, _to_qt(value))
        elif setting.choices:
            editor = QComboBox(self)
            for choice in setting.choices:
                editor.addItem(choice, choice)
        elif setting.type is bool:
            editor = QCheckBox(self)
        elif setting.type is int:
            editor = QSpinBox(self)
            low = setting.minimum if setting.minimum is not None else 0
            editor.setRange(low - 1 if setting.default is None else low, 1_000_000)
            editor.setSingleStep(16 if low >= 16 else 1)
            if setting.default is None:
                editor.setSpecialValueText(DEFAULT_TEXT)  # the lowest value means "use the default"
        elif setting.name == "language":
            editor = QComboBox(self)
            editor.setEditable(True)
            for language in LANGUAGES:
                editor.addItem(language or "The document's, where the model writes it (else English)", language)
        else:
            editor = QLineEdit(self)
        editor.setToolTip(setting.help)
        editor.setAccessibleName(LABELS.get(setting.name, setting.name))
        editor.setAccessibleDescription(setting.help)
        return editor

    def _model_row(self, combo: QWidget) -> QWidget:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(combo, 1)
        button = QPushButton("Import…", row)
        button.setAccessibleName("Import model")
        button.setToolTip("Add a local Hugging Face model folder or a GGUF file")
        button.clicked.connect(self.import_model)
        layout.addWidget(button)
        self.import_button = button
        return row

    def import_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model (Cancel to choose a folder)",
                                              str(Path.home()), "GGUF model (*.gguf)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "Import a Hugging Face model folder", str(Path.home()))
        if path:
            self.add_model(Path(path))

    def add_model(self, path: Path) -> None:
        """Register ``path`` (a model folder or a GGUF file, converted once) off the GUI thread."""
        self.import_button.setEnabled(False)
        self.import_button.setText("Importing…")
        self._import = _ModelImport(path)
        self._import.finished.connect(self._model_imported)
        self._import.start()

    def _model_imported(self, name: str, error: str) -> None:
        self.import_button.setEnabled(True)
        self.import_button.setText("Import…")
        if error:
            QMessageBox.warning(self, "Cannot import the model", error)
            return
        combo = self.editors["model"]
        assert isinstance(combo, QComboBox)
        if combo.findData(name) < 0:
            combo.addItem(f"{name}  (imported)", name)
        combo.setCurrentIndex(combo.findData(name))
        self.modelImported.emit(name)

    # values ------------------------------------------------------------------------------------
    def set_values(self, values: dict[str, Any]) -> None:
        self._updating_preset = True
        for setting in self._schema:
            _set_editor(self.editors[setting.name], values.get(setting.name, setting.default))
        self.preset.setCurrentText(preset_of(values))
        self._updating_preset = False

    def values(self) -> dict[str, Any]:
        """The edited values, validated by the schema."""
        values = dict(self._initial)
        for setting in self._schema:
            values[setting.name] = settings_schema.validate(setting.name, _editor_value(self.editors[setting.name]))
        return values

    def _apply_preset(self, name: str) -> None:
        if self._updating_preset or name not in PRESETS:
            return
        self._updating_preset = True
        for key, value in PRESETS[name].items():
            if key in self.editors:
                _set_editor(self.editors[key], value)
        self._updating_preset = False

    def _budget_edited(self, *_args) -> None:
        if not self._updating_preset:
            self._updating_preset = True
            self.preset.setCurrentText(preset_of(self.values()))
            self._updating_preset = False

    def accept(self) -> None:
        try:
            settings_schema.save(self.values())
        except settings_schema.SettingsError as exc:
            QMessageBox.warning(self, "Invalid setting", str(exc))
            return
        super().accept()


class _ModelImport(QObject):
    """Runs :func:`app.engine.importer.import_model` on a plain thread (GGUF conversion takes seconds)."""

    finished = Signal(str, str)  # (name, error message or "")

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def start(self) -> None:
        threading.Thread(target=self._run, name="model-import", daemon=True).start()

    def _run(self) -> None:
        from app.engine.importer import import_model
        from app.errors import SepSumError

        try:
            entry, _new = import_model(self.path)
        except SepSumError as exc:
            self.finished.emit("", str(exc))
        except Exception as exc:  # report, never crash the dialog
            self.finished.emit("", f"{self.path.name} could not be imported ({type(exc).__name__}: {exc})")
        else:
            self.finished.emit(entry.name, "")


def _to_qt(value: Any) -> Any:
    """Item data for Qt: None becomes "" (PySide6 6.12 mishandles None in QVariants, see refcount_guard)."""
    return "" if value is None else value


def _from_qt(value: Any) -> Any:
    return None if value == "" else value


def _changed_signal(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    if isinstance(editor, QSpinBox):
        return editor.valueChanged
    if isinstance(editor, QCheckBox):
        return editor.toggled
    return editor.textChanged


def _set_editor(editor: QWidget, value: Any) -> None:
    if isinstance(editor, QComboBox):
        index = editor.findData(_to_qt(value))
        if index < 0 and value is not None:
            if editor.isEditable():
                editor.setEditText(str(value))
                return
            editor.addItem(str(value), _to_qt(value))
            index = editor.count() - 1
        editor.setCurrentIndex(max(index, 0))
    elif isinstance(editor, QSpinBox):
        editor.setValue(editor.minimum() if value is None else int(value))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QLineEdit):
        editor.setText("" if value is None else str(value))


def _editor_value(editor: QWidget) -> Any:
    if isinstance(editor, QComboBox):
        if editor.isEditable():
            text = editor.currentText().strip()
            index = editor.findText(text, Qt.MatchFlag.MatchExactly)
            return _from_qt(editor.itemData(index)) if index >= 0 else (text or None)
        return _from_qt(editor.currentData())
    if isinstance(editor, QSpinBox):
        if editor.specialValueText() and editor.value() == editor.minimum():
            return None
        return editor.value()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QLineEdit):
        return editor.text().strip() or None
    return None
