"""The GUI's memory estimate goes through the run's settings -> request -> CacheConfig path (int8 entries too)."""

from app import request, settings
from app.engine.estimate import format_bytes
from app.gui.worker import estimate_for


def test_the_gui_estimate_counts_int8_entries(installed_home):
    values = settings.defaults() | {"device": "cpu", "kv_quant": "int8", "cache_max_entries": 1024}
    shown = estimate_for({**values, "tokens": 20_000})
    run = request.estimate_for_request(request.from_settings([], values), tokens=20_000)
    assert shown["estimate"] == run  # the numbers the run's memory check uses
    bf16 = estimate_for({**values, "kv_quant": "none", "tokens": 20_000})["estimate"]
    assert shown["estimate"].kv_bytes == bf16.kv_bytes_int8 < bf16.kv_bytes
    assert shown["estimate"].kv_bytes_int8 == 0  # nothing to advise: the cache is int8 already
    assert shown["cache_budget"] == 1024
    assert estimate_for({**values, "cache": "full", "tokens": 100})["cache_budget"] is None


def test_the_window_shows_the_int8_estimate(make_window, qtbot):
    window = make_window(show_error_dialogs=False)
    int8 = settings.defaults() | {"device": "cpu", "kv_quant": "int8"}
    expected = estimate_for({**int8, "tokens": 4096})["estimate"]
    label = window.memory_panel.estimate_label
    qtbot.waitUntil(lambda: "Estimate for" in label.text(), timeout=30_000)  # the one of the defaults
    window.apply_settings(int8)
    qtbot.waitUntil(lambda: f"KV {format_bytes(expected.kv_bytes)} " in label.text(), timeout=30_000)
    text = label.text()
    bf16 = estimate_for({**int8, "kv_quant": "none", "tokens": 4096})["estimate"]
    assert f"KV {format_bytes(bf16.kv_bytes)} " not in text  # 2 x the bytes: the old, wrong figure
