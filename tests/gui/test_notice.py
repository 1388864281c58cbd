"""The notice before a run shows in the window: a Latin chat gets an English summary from the default model,
and the window says so above the summary while that job is shown (real pipeline, real model)."""

from __future__ import annotations

from tests.gui.conftest import drop_files

RUN_TIMEOUT_MS = 600_000
NOTICE = "The default model writes English; import a multilingual model for Latin summaries."


def test_the_language_notice_is_shown_with_its_job(make_window, shared_data, qtbot):
    window = make_window()
    window.apply_settings({**window.settings, "mode": "single"})  # the model writes (passages: the document's own)
    latin = shared_data / "chats" / "whatsapp" / "chatminer__test_ddmmyy_24hrs.txt"
    english = shared_data / "chats" / "whatsapp" / "pokemon.txt"
    assert drop_files(window.drop_zone, [latin, english])
    assert not window.notice_label.isVisible()

    with qtbot.waitSignal(window.queueFinished, timeout=RUN_TIMEOUT_MS):
        window.start_action.trigger()
    latin_view, english_view = window.jobs.values()
    assert latin_view.notice == NOTICE and english_view.notice == ""

    window.queue.setCurrentItem(window.queue.item_for(latin_view.job.id))  # as a click on its row
    assert window.notice_label.isVisible() and window.notice_label.text() == NOTICE
    window.queue.setCurrentItem(window.queue.item_for(english_view.job.id))
    assert not window.notice_label.isVisible()


def test_a_retry_clears_the_flagged_text_and_the_final_text_replaces_the_stream(qtbot, installed_home, shared_data):
    """The worker runs a scripted event stream (the real retry's events are covered in
    tests/app/summarize/test_guard_pipeline.py): what streamed before the retry leaves the screen, and the
    final text is what stays."""
    from app.gui.main_window import MainWindow
    from app.gui.worker import SummaryWorker
    from app.summarize.events import DocumentLoaded, Notice, Stage, SummaryDone, Token

    chat = shared_data / "chats" / "whatsapp" / "pokemon.txt"
    garbage = "[2016-10-31 20:45] Prof. Oak: Smart-pokeball is created"
    final = "Ash and his friends plan a trip; Prof. Oak announces a new pokeball."

    def scripted(request, cancel):
        path = str(request.paths[0])
        yield DocumentLoaded(path, "whatsapp", "pokemon", 300)
        yield Notice(path, NOTICE)
        yield Token(text=garbage, token_id=1)
        yield Stage("retrying", "the summary copied raw chat messages: trying once more")
        yield Token(text=final, token_id=2)
        yield SummaryDone(path, final, {"retries": 1, "fallback": False})

    window = MainWindow(worker=SummaryWorker(summarize_fn=scripted), show_error_dialogs=False)
    qtbot.addWidget(window)
    window.show()
    window.add_paths([chat])
    with qtbot.waitSignal(window.queueFinished, timeout=60_000):
        window.start()
    (view,) = window.jobs.values()
    assert view.text == final and window.summary_view.text == final
    assert garbage not in window.summary_view.browser.toPlainText()
    assert window.notice_label.text() == NOTICE
    window.close()
