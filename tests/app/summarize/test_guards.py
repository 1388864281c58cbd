"""Degenerate-output guards: repeated lines and looping spans are stopped and trimmed."""

from app.summarize.guards import RepetitionGuard, is_empty_summary, normalize_line


def _stream(guard: RepetitionGuard, pieces: list[str], ids: list[int] | None = None) -> tuple[str, bool]:
    shown, stopped = [], False
    for index, piece in enumerate(pieces):
        token_id = ids[index] if ids else 1000 + index
        text, stop = guard.push(token_id, piece)
        shown.append(text)
        if stop:
            stopped = True
            break
    if not stopped:
        shown.append(guard.finish())
    return "".join(shown), stopped


def test_a_repeated_bullet_is_never_shown_and_stops_decoding():
    guard = RepetitionGuard()
    pieces = ["- The board", " declared a drought", " in June.\n", "- Leak crews", " fixed 214 leaks.\n",
              "- The board", " declared a drought", " in June.\n", "- never reached"]
    shown, stopped = _stream(guard, pieces)
    assert stopped and guard.stopped_by == "repetition"
    assert shown.count("declared a drought") == 1
    assert guard.text.strip() == "- The board declared a drought in June.\n- Leak crews fixed 214 leaks.".strip()


def test_a_line_that_only_starts_like_an_earlier_one_is_released():
    guard = RepetitionGuard()
    pieces = ["- The board met", " on Monday.\n", "- The board met", " again in July", " to vote.\n"]
    shown, stopped = _stream(guard, pieces)
    assert not stopped
    assert shown == "- The board met on Monday.\n- The board met again in July to vote.\n"
    assert guard.text == shown


def test_duplicate_last_line_without_newline_is_dropped_at_finish():
    guard = RepetitionGuard()
    shown, stopped = _stream(guard, ["Costs rose by ten percent.\n", "Costs rose by ten percent."])
    assert not stopped
    assert shown == "Costs rose by ten percent.\n" and guard.stopped_by == "repetition"


def test_short_lines_may_recur():
    guard = RepetitionGuard()
    shown, stopped = _stream(guard, ["Decisions:\n", "- none\n", "Decisions:\n", "- none\n"])
    assert not stopped and shown.count("Decisions:") == 2


def test_a_looping_span_inside_a_line_stops_with_one_copy_kept():
    guard = RepetitionGuard()
    loop = [" and", " then", " the", " crew"]
    pieces = ["The water ran out"] + loop * 5
    ids = [1] + [11, 12, 13, 14] * 5
    shown, stopped = _stream(guard, pieces, ids)
    assert stopped and guard.stopped_by == "repetition"
    assert guard.text == "The water ran out and then the crew"


def test_runs_of_one_token_need_many_copies_and_blank_runs_are_harmless():
    guard = RepetitionGuard()
    _, stopped = _stream(guard, ["Wait", "!", "!", "!", "!"], [1, 2, 2, 2, 2])
    assert not stopped
    guard = RepetitionGuard()
    _, stopped = _stream(guard, ["Done."] + ["\n"] * 12, [1] + [3] * 12)
    assert not stopped
    guard = RepetitionGuard()
    _, stopped = _stream(guard, ["Wait"] + ["!"] * 9, [1] + [2] * 9)
    assert stopped


def test_empty_summary_detection():
    assert is_empty_summary("")
    assert is_empty_summary("  -\n* ")
    assert is_empty_summary("Summary")
    assert not is_empty_summary("The board met.")


def test_normalize_line_strips_bullets_and_case():
    assert normalize_line("  - The  Board MET") == "the board met"
    assert normalize_line("3. The board met") == "the board met"


def test_a_three_token_loop_is_caught_before_enough_tokens_for_a_one_token_run():
    guard = RepetitionGuard()
    _, stopped = _stream(guard, ["Start", " a", " b", " c", " a", " b", " c", " a", " b", " c"],
                         [1, 5, 6, 7, 5, 6, 7, 5, 6, 7])
    assert stopped and guard.text == "Start a b c"
