"""The GUI's queue state machine, driven without Qt: starts, worker events, cancel, passwords, removal."""

from pathlib import Path
from types import SimpleNamespace

from app.job_queue import CANCELLED, DONE, FAILED, QUEUED, READING, SUMMARIZING, JobQueue

SETTINGS = {"length": "short", "cache_max_entries": 600, "kv_quant": "int8"}


def _queue(*names: str) -> tuple[JobQueue, list[int]]:
    queue = JobQueue()
    return queue, [queue.add(Path(f"/docs/{name}")).job.id for name in names]


def _run_to_the_end(queue: JobQueue, job_id: int, summary: str = "- a point") -> None:
    queue.on_stage(job_id, "reading")
    queue.on_document_loaded(job_id, 700)
    queue.on_text(job_id, summary)
    queue.on_done(job_id, summary, {"output_tokens": 3}, incomplete=False)
    queue.on_ended(job_id)


def test_jobs_run_one_after_another_and_the_end_is_reported_once():
    queue, (first, second) = _queue("a.pdf", "b.txt")
    assert queue.advance(SETTINGS).finished is False  # not started: nothing runs, nothing ends
    assert queue.start() and not queue.start()  # a second start while running does nothing
    step = queue.advance(SETTINGS, {"max_new_tokens": 12})
    assert step.run is queue.jobs[first] is queue.current and step.run.state == READING
    request = step.run.job.request()  # the settings it was queued with become the pipeline's request
    assert request.paths == [Path("/docs/a.pdf")] and request.cache_budget == {"max_entries": 600}
    assert request.kv_quant == "int8" and request.max_new_tokens == 12
    assert queue.advance(SETTINGS) == type(step)()  # the first still runs: wait
    _run_to_the_end(queue, first)
    assert queue.jobs[first].state == DONE and queue.jobs[first].percent == 100.0
    assert queue.advance(SETTINGS).run is queue.jobs[second]
    _run_to_the_end(queue, second)
    end = queue.advance(SETTINGS)
    assert end.finished and end.failed == 0 and not queue.running
    assert not queue.advance(SETTINGS).finished  # reported once
    assert not queue.start()  # nothing queued any more


def test_progress_fills_reading_then_writing_and_never_goes_back():
    queue, (job,) = _queue("a.pdf")
    queue.start()
    queue.advance(SETTINGS)
    progress = [("prefill", 50, 100, 85.0 * 0.5), ("prefill", 100, 100, 85.0), ("decode", 10, 100, 86.5),
                ("prefill", 10, 100, 86.5), ("decode", 100, 100, 99.0)]
    for phase, done, total, percent in progress:
        entry = queue.on_progress(job, phase, done, total, 40.0)
        assert entry.percent == percent and entry.state == SUMMARIZING


def test_a_stage_after_reading_means_summarizing():
    queue, (job,) = _queue("a.pdf")
    queue.start()
    queue.advance(SETTINGS)
    assert queue.on_stage(job, "reading").state == READING
    assert queue.on_stage(job, "loading model").state == SUMMARIZING


def test_cancel_drops_late_events_and_keeps_the_partial_text():
    queue, (first, second) = _queue("a.pdf", "b.txt")
    queue.start()
    queue.advance(SETTINGS)
    queue.on_text(first, "partial")
    cancelled = queue.cancel()
    assert cancelled.state == CANCELLED and cancelled.job.cancel.is_set() and not queue.running
    assert queue.on_text(first, " late") is None and queue.on_failed(first, "late") is None
    assert queue.on_done(first, "late", {}, incomplete=True) is None
    ended = queue.on_ended(first)
    assert ended.was_current and ended.unfinished is None and cancelled.text == "partial"
    end = queue.advance(SETTINGS)
    assert end.run is None and end.finished  # the second job stays queued until the next start
    assert queue.jobs[second].state == QUEUED


def test_a_job_that_ends_without_a_result_keeps_what_streamed():
    queue, (job,) = _queue("a.pdf")
    queue.start()
    queue.advance(SETTINGS)
    queue.on_text(job, "half a summary")
    ended = queue.on_ended(job)
    assert ended.unfinished == "done" and queue.jobs[job].state == DONE and queue.current is None


def test_failures_are_counted_per_start():
    queue, (bad, good) = _queue("broken.pdf", "b.txt")
    queue.start()
    queue.advance(SETTINGS)
    assert queue.on_failed(bad, "broken.pdf is not a PDF").state == FAILED
    assert queue.on_ended(bad).unfinished is None
    _run_to_the_end(queue, queue.advance(SETTINGS).run.job.id)
    end = queue.advance(SETTINGS)
    assert end.finished and end.failed == 1
    again = queue.again(bad)
    assert again.job.id not in (bad, good) and again.job.path == Path("/docs/broken.pdf")
    queue.start()
    assert queue.failed == 0


def test_a_password_prompt_requeues_or_fails_the_job():
    queue, (locked,) = _queue("locked.pdf")
    queue.start()
    queue.advance(SETTINGS)
    queue.on_password_needed(locked, "locked.pdf is encrypted", wrong=False)
    ended = queue.on_ended(locked)
    assert ended.ask_password and ended.unfinished is None and not ended.entry.wrong_password
    assert queue.password_given(ended.entry, "secret") == "" and ended.entry.state == QUEUED
    entry = queue.advance(SETTINGS).run
    assert entry.job.password == "secret" and entry.job.request().password == "secret"
    queue.on_password_needed(locked, "wrong password", wrong=False)
    ended = queue.on_ended(locked)
    assert ended.entry.wrong_password  # a password was given: the prompt says it was wrong
    assert queue.password_given(ended.entry, None) == "wrong password" and ended.entry.state == FAILED
    assert queue.advance(SETTINGS).failed == 1


def test_the_running_job_cannot_be_removed_and_clear_keeps_unfinished_jobs():
    queue, (running, done, waiting) = _queue("a.pdf", "b.txt", "c.md")
    queue.jobs[done].state = DONE
    queue.start()
    assert queue.advance(SETTINGS).run.job.id == running
    assert queue.remove([running, 999]) == []
    assert queue.clear_finished() == [done]
    assert list(queue.jobs) == [running, waiting]


def test_a_read_document_names_the_job():
    queue, (job,) = _queue("export.zip")
    document = SimpleNamespace(title="Team chat", kind="chat")
    assert queue.on_document_read(job, document).title == "Team chat"
    assert queue.on_document_read(job, SimpleNamespace(title="", kind="chat")).title == "export.zip"
    assert queue.on_document_read(12345, document) is None
