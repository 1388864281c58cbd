"""Decode thread counts: the tuning schedule, the choice, and a Session that applies and restores them."""

from __future__ import annotations

import pytest
import torch

from sepllm_core.config import CacheConfig
from sepllm_core.events import Token
from sepllm_core.generate import Session
from sepllm_core.threads import MIN_TOKENS_TO_TUNE, TUNE_ROUNDS, TUNE_STEPS, DecodeThreads, candidates


def test_candidates_are_the_count_half_and_one():
    assert candidates(1) == [1]
    assert candidates(2) == [2, 1]
    assert candidates(8) == [8, 4, 1]


def test_the_fastest_count_by_median_is_kept_after_the_timed_steps():
    plan = DecodeThreads(4)
    assert plan.tuning_steps == TUNE_ROUNDS * 3 * TUNE_STEPS
    slow = {4: 0.030, 2: 0.010, 1: 0.020}
    for step in range(plan.tuning_steps):
        count = plan.threads_for(step)
        assert plan.choice == 4  # undecided until every timed step is in
        seconds = 5.0 if step == 0 else slow[count]  # one outlier does not decide
        plan.record(step, seconds)
    assert plan.tuned and plan.choice == 2
    assert plan.threads_for(plan.tuning_steps + 100) == 2
    assert plan.rates()[2] == pytest.approx(100.0)


def test_fixed_and_single_thread_plans_time_nothing():
    assert DecodeThreads(4, fixed=3).threads_for(0) == 3
    assert DecodeThreads(4, fixed=3).tuning_steps == 0
    assert DecodeThreads(1).tuning_steps == 0
    assert DecodeThreads(4, tune=False).threads_for(5) == 4


@pytest.fixture
def two_threads(torch_threads):
    torch_threads(2)


def _threads_per_token(session: Session, tokens: int) -> list[int]:
    """The intra-op thread count while each Token event is handled (the step that made it ran with it)."""
    seen = []
    for event in session.generate(tokens, detect_repetition=False):
        if isinstance(event, Token) and len(seen) < tokens:
            seen.append(torch.get_num_threads())
    return seen


def test_session_times_the_candidates_then_decodes_with_its_choice(default_model, two_threads):
    model, tokenizer = default_model
    session = Session(model, tokenizer, CacheConfig.balanced())
    session.eos_ids = set()
    for _ in session.feed_text("Call me Ishmael. Some years ago, never mind how long precisely."):
        pass
    seen = _threads_per_token(session, MIN_TOKENS_TO_TUNE)
    plan = DecodeThreads(2)
    assert seen[:plan.tuning_steps] == [plan.threads_for(step) for step in range(plan.tuning_steps)]
    choice = session.stats()["decode_threads"]
    assert choice in (1, 2)
    assert set(seen[plan.tuning_steps:]) == {choice}
    assert torch.get_num_threads() == 2  # prefill's count is back

    short = _threads_per_token(session, 8)  # too short to time: the last choice, untimed
    assert set(short) == {choice}
    assert torch.get_num_threads() == 2


def test_session_with_fixed_decode_threads(default_model, two_threads):
    model, tokenizer = default_model
    session = Session(model, tokenizer, CacheConfig.balanced(), decode_threads=1)
    session.eos_ids = set()
    for _ in session.feed_text("It was the best of times, it was the worst of times."):
        pass
    assert set(_threads_per_token(session, MIN_TOKENS_TO_TUNE)) == {1}
    assert session.stats()["decode_threads"] == 1
    assert torch.get_num_threads() == 2
