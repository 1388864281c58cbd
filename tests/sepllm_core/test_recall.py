"""Planted-fact recall: fact planting and scoring logic, and the measure's signal on the real model."""

from __future__ import annotations

import pytest

from sepllm_core import recall
from sepllm_core.recall import FactResult, RecallReport, make_facts, plant_facts, skip_gutenberg_header

MOBY = "books/gutenberg_2701_Moby_Dick_Melville.txt"


def test_facts_have_distinct_subjects_values_and_unplanted_distractors():
    facts = make_facts(10, seed=3)
    assert [round(f.depth, 2) for f in facts] == [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    values = [f.value for f in facts]
    assert len(set(values)) == 10 and len({f.question for f in facts}) == 10
    assert {f.kind for f in facts} == {"code word", "number", "city"}
    for fact in facts:
        assert len(fact.distractors) == recall.DISTRACTORS == len(set(fact.distractors))
        assert not set(fact.distractors) & set(values)
        assert fact.sentence.endswith(f" {fact.value}.")
        assert fact.question.startswith("\n\nQuestion: ")
        # the answer stem repeats the sentence up to the value: a completion, no free generation
        assert fact.sentence.startswith(fact.question.split("Answer: ")[1])
    assert make_facts(10, seed=3) == facts and make_facts(10, seed=4) != facts


def test_open_values_are_made_up_and_keep_the_subjects_and_questions():
    closed, made_up = make_facts(10, seed=3), make_facts(10, seed=3, open_values=True)
    assert [(f.kind, f.question, f.depth) for f in made_up] == [(f.kind, f.question, f.depth) for f in closed]
    values = [f.value for f in made_up]
    assert len(set(values)) == 10
    closed_lists = {*recall.CODE_WORDS, *recall.CITIES}
    for fact in made_up:
        candidates = (fact.value, *fact.distractors)
        assert len(set(candidates)) == 1 + recall.DISTRACTORS and not set(fact.distractors) & set(values)
        assert not set(candidates) & closed_lists
        assert not any(a != b and a.startswith(b) for a in candidates for b in candidates)  # ranking sums tokens
        if fact.kind == "number":
            assert all(c.isdigit() and len(c) == len(fact.value) != 4 for c in candidates)  # closed ones: 4 digits
        if fact.kind == "code word":
            assert all(c[2] == "-" and len(c) == len(fact.value) for c in candidates)
        assert fact.sentence.endswith(f" {fact.value}.")
    assert make_facts(10, seed=3, open_values=True) == made_up
    assert make_facts(10, seed=3) == closed  # the closed lists are unchanged by the option
    assert len(make_facts(recall.MAX_FACTS, seed=1, open_values=True)) == recall.MAX_FACTS
    for too_many in (recall.MAX_FACTS + 1, 80):  # 80 made-up facts once looped forever (90 two-digit numbers)
        with pytest.raises(ValueError, match=f"at most {recall.MAX_FACTS}"):
            make_facts(too_many, seed=1, open_values=True)


def test_make_facts_rejects_zero():
    with pytest.raises(ValueError, match="at least one fact"):
        make_facts(0)


def test_gutenberg_header_is_skipped():
    text = "The Project Gutenberg EBook\nLicense\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nCall me Ishmael."
    assert skip_gutenberg_header(text) == "Call me Ishmael."
    assert skip_gutenberg_header("no header here") == "no header here"


def test_facts_are_planted_at_their_depths_on_line_starts(default_model):
    _, tokenizer = default_model
    text = "".join(f"line {i} of the story goes on and on.\n" for i in range(300))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    facts = make_facts(5, seed=0)
    ends_line = recall._line_end_table(tokenizer)
    segments = plant_facts(ids, facts, tokenizer, ends_line)
    planted = [s for s in segments if s.protected]
    assert [s.fact for s in planted] == [0, 1, 2, 3, 4]
    assert [i for s in segments if not s.protected for i in s.ids] == ids  # the text is intact
    offset = 0
    for segment in segments:
        if segment.protected:
            fact = facts[segment.fact]
            assert tokenizer.decode(segment.ids) == fact.sentence + "\n"
            text_before = offset - sum(len(s.ids) for s in planted if s.fact < segment.fact)
            assert abs(text_before / len(ids) - fact.depth) < 0.03
            assert ends_line(ids[text_before - 1])
        offset += len(segment.ids)


def test_report_shares_and_ranks():
    def result(depth: float, rank: int) -> FactResult:
        return FactResult(depth=depth, kind="city", value="Oslo", rank=rank, logprob=-1.0, best_distractor="Lima",
                          best_distractor_logprob=-2.0, position=0, seed=0)

    report = RecallReport(cache="full", tokens=100, facts=[result(0.05, 1), result(0.25, 3), result(0.45, 1),
                                                           result(0.55, 2), result(0.95, 1)])
    summary = report.to_dict()
    assert summary["recall_early"] == pytest.approx(2 / 3) and summary["recall_early_count"] == "2/3"
    assert summary["recall_late"] == 0.5 and summary["mean_rank_late"] == 1.5
    assert summary["mean_rank_early"] == pytest.approx(5 / 3)
    assert len(summary["facts"]) == 5 and summary["facts"][1]["rank"] == 3


def _run(default_model, shared_data, cache_factory, **kwargs):
    model, tokenizer = default_model
    text = (shared_data / MOBY).read_text(encoding="utf-8")
    return recall.measure_recall(model, tokenizer, text, tokens=1500, cache_factory=cache_factory,
                                 facts=6, seeds=(0,), **kwargs)


def _factory(default_model, policy: str, budget: int = 256):
    model, tokenizer = default_model
    return recall.cache_factory_for(model, tokenizer, recall.cache_config_for(policy, budget, chunk_size=128))


def test_full_cache_recalls_early_facts_and_no_document_does_not(default_model, shared_data):
    full = _run(default_model, shared_data, _factory(default_model, "full"), cache_name="full")
    none = _run(default_model, shared_data, None, cache_name="none")
    assert full.tokens == pytest.approx(1500, abs=20)
    assert full.recall_early >= 2 / 3, full.to_dict()
    assert none.recall_early <= 1 / 3, none.to_dict()
    mean_rank = {r.cache: r.to_dict()["mean_rank_early"] for r in (full, none)}
    assert mean_rank["none"] >= mean_rank["full"] + 1.5
    assert full.kv_entries == full.tokens and none.kv_entries == 0


def test_control_keeps_fact_sentences_and_recalls_them(default_model, shared_data):
    control = _run(default_model, shared_data, _factory(default_model, "control"), cache_name="control",
                   protect_facts=True, chunk_size=128)
    assert control.kv_entries < control.tokens / 2  # the early text itself is gone ...
    assert control.recall_early >= 2 / 3, control.to_dict()  # ... yet the early facts are recalled


def test_a_plain_transformers_cache_works_as_the_full_cache(default_model, shared_data):
    from transformers import DynamicCache

    model, tokenizer = default_model
    text = (shared_data / MOBY).read_text(encoding="utf-8")
    report = recall.measure_recall(model, tokenizer, text, tokens=400, facts=2, seeds=(5,), cache_name="dynamic",
                                   cache_factory=lambda: DynamicCache(config=model.config))
    assert [f.rank for f in report.facts] == [1, 1]
    assert report.kv_entries == report.tokens and report.kv_bytes_peak == report.kv_bytes_full_equivalent > 0


def test_cache_config_for_splits_the_budget():
    assert recall.cache_config_for("none") is None
    sepllm = recall.cache_config_for("sepllm", 1024)
    assert (sepllm.policy, sepllm.initial, sepllm.separators, sepllm.local, sepllm.max_entries) == (
        "sepllm", 4, 256, 256, 1024)
    assert sepllm.fill_recent and not recall.cache_config_for("sepllm", 1024, fill_recent=False).fill_recent
    window = recall.cache_config_for("control", 512)
    assert (window.policy, window.local, window.max_entries) == ("window", 508, 512)
    assert recall.cache_config_for("full").policy == "full"
    with pytest.raises(ValueError, match="unknown"):
        recall.cache_config_for("everything")
