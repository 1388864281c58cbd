"""Recall training sequences: disjoint from the recall evaluation, answers after their facts, weights on answers."""

from __future__ import annotations

import random
import re

import pytest
import torch

from sepllm_core import recall, recall_data
from sepllm_core.adapt import (
    AdaptConfig,
    ExperimentOptions,
    read_texts,
    sample_training_batch,
    split_tokens,
    weighted_distill_loss,
)
from sepllm_core.recall_data import (
    QUESTION_FORMATS,
    TEMPLATES,
    RecallDataConfig,
    build_recall_sequence,
    make_training_facts,
    recall_batch,
)

BOOK = "books/gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


@pytest.fixture(scope="module")
def train_docs(tokenizer, shared_data):
    train, _ = split_tokens(read_texts([shared_data / BOOK]), tokenizer, 0.1)
    return train


def _training_strings() -> list[str]:
    """Every string a training fact or question can be made of (values drawn over many seeds)."""
    strings = [t.stem for t in TEMPLATES] + [t.question for t in TEMPLATES] + list(QUESTION_FORMATS)
    strings += [s for t in TEMPLATES for s in t.subjects]
    for seed in range(50):
        strings += [v for t in TEMPLATES for v in t.values(random.Random(seed))]
    return strings


def test_templates_subjects_and_values_are_disjoint_from_the_recall_evaluation():
    evaluation = [*recall.CODE_WORDS, *recall.CITIES, *recall.PEOPLE, *recall.PLACES]
    evaluation_stems = ["The password for the", "The room number of", "was born in the city of"]
    training = _training_strings()
    for word in evaluation + evaluation_stems:
        pattern = re.compile(rf"\b{re.escape(word.lower())}\b")
        clashes = [s for s in training if pattern.search(s.lower())]
        assert not clashes, (word, clashes[:3])
    # recall.py's numbers are 4-digit room numbers; training numbers never have 4 digits.
    assert not [s for s in training if re.search(r"\b\d{4}\b", s)]
    assert len({t.kind for t in TEMPLATES}) >= 8


def test_facts_are_distinct_and_sentences_end_with_their_value():
    facts = make_training_facts(12, random.Random(3))
    assert len({f.sentence for f in facts}) == 12
    for fact in facts:
        assert fact.sentence.endswith(f" {fact.value}.")
        stem = fact.sentence[: -len(fact.value) - 2]
        assert fact.prompt.endswith(stem), (fact.prompt, stem)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_answers_follow_their_facts_and_weights_line_up(tokenizer, train_docs, seed):
    config = RecallDataConfig(min_facts=4, max_facts=8, min_questions=2, max_questions=4, answer_weight=7.0)
    seq = build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(seed), config)
    ids = seq.input_ids.tolist()
    assert len(ids) == 512 and seq.weights.shape == seq.answer_mask.shape == (512,)
    # weights: answer_weight exactly on answer tokens, 1 elsewhere
    assert torch.equal(seq.weights == 7.0, seq.answer_mask)
    assert torch.all(seq.weights[~seq.answer_mask] == 1.0)
    # every planted fact sentence sits at its recorded start
    for fact, start in zip(seq.facts, seq.fact_starts, strict=True):
        sentence = tokenizer(fact.sentence + "\n", add_special_tokens=False)["input_ids"]
        assert ids[start : start + len(sentence)] == sentence
    # the answer spans, in order, are the asked facts' values, each after its fact and after all text
    spans, current = [], []
    for index, flag in enumerate(seq.answer_mask.tolist()):
        if flag:
            current.append(index)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    assert len(spans) == len(seq.asked) >= 2
    last_fact_end = max(seq.fact_starts)
    for span, fact_index in zip(spans, seq.asked, strict=True):
        fact = seq.facts[fact_index]
        assert tokenizer.decode([ids[i] for i in span]) == " " + fact.value
        assert span[0] > seq.fact_starts[fact_index] and span[0] > last_fact_end
    # the question block just before the first answer restates the fact's stem
    first = seq.facts[seq.asked[0]]
    assert tokenizer.decode(ids[: spans[0][0]]).endswith(first.prompt)


def test_batches_are_deterministic_and_mix_plain_text(tokenizer, train_docs):
    a = recall_batch(train_docs, tokenizer, 2, 384, seed=1, step=5)
    b = recall_batch(train_docs, tokenizer, 2, 384, seed=1, step=5)
    c = recall_batch(train_docs, tokenizer, 2, 384, seed=1, step=6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])

    config = AdaptConfig(seq_len=384, local=64, batch_size=8, recall_share=0.5, answer_weight=5.0)
    ids, weights, answers = sample_training_batch(train_docs, tokenizer, config, step=0)
    assert ids.shape == weights.shape == answers.shape == (8, 384)
    recall_rows = answers.any(1)
    assert 0 < int(recall_rows.sum()) < 8  # both kinds of rows in this (seeded) batch
    assert torch.all(weights[~recall_rows] == 1.0) and torch.all(weights[answers] == 5.0)
    plain = sample_training_batch(train_docs, tokenizer, AdaptConfig(seq_len=384, local=64), step=0)
    assert plain[1] is None and plain[2] is None


def test_weighted_loss_reduces_to_the_mean_and_up_weights_answers():
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 10, 32, generator=generator)
    student = torch.randn(2, 10, 32, generator=generator)
    ids = torch.randint(0, 32, (2, 10), generator=generator)
    config = AdaptConfig(seq_len=10, local=2, experiment=ExperimentOptions(lm_weight=0.5))
    plain = weighted_distill_loss(teacher, student, ids, config)
    ones = weighted_distill_loss(teacher, student, ids, config, torch.ones(2, 10))
    torch.testing.assert_close(plain.loss, ones.loss)
    assert plain.answer_kl is None

    answers = torch.zeros(2, 10, dtype=torch.bool)
    answers[0, 7] = True  # predicted from position 6
    teacher_p = torch.log_softmax(teacher, -1)
    kl_at = (teacher_p.exp() * (teacher_p - torch.log_softmax(student, -1))).sum(-1)  # (2, 10)
    weighted = weighted_distill_loss(teacher, student, ids, config, torch.where(answers, 9.0, 1.0), answers)
    expected = (kl_at.sum() + 8 * kl_at[0, 6]) / (20 + 8)
    torch.testing.assert_close(weighted.kl, expected)
    torch.testing.assert_close(weighted.answer_kl, kl_at[0, 6])
    ce = torch.nn.functional.cross_entropy(student[0, 6], ids[0, 7])
    torch.testing.assert_close(weighted.answer_lm, ce)
    experiment = ExperimentOptions(lm_weight=0.5, answer_lm_weight=2.0)
    with_lm = weighted_distill_loss(teacher, student, ids, AdaptConfig(seq_len=10, local=2, experiment=experiment),
                                    torch.where(answers, 9.0, 1.0), answers)
    torch.testing.assert_close(with_lm.loss, weighted.loss + 2.0 * ce)


def test_too_short_sequences_are_refused(tokenizer, train_docs):
    with pytest.raises(ValueError, match="too short"):
        build_recall_sequence(train_docs[0], tokenizer, 40, random.Random(0),
                              RecallDataConfig(min_facts=8, max_facts=8, min_questions=4, max_questions=4))
    with pytest.raises(ValueError, match="answer_weight"):
        RecallDataConfig(answer_weight=0).validate()
    assert recall_data.RecallDataConfig().answer_weight > 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_distance_keeps_every_fact_that_far_before_the_questions(tokenizer, train_docs, seed):
    config = RecallDataConfig(min_facts=6, max_facts=6, min_questions=3, max_questions=3, min_distance=150)
    seq = build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(seed), config)
    first_answer = int(seq.answer_mask.nonzero()[0])
    first_prompt = tokenizer(seq.facts[seq.asked[0]].prompt, add_special_tokens=False)["input_ids"]
    questions_start = first_answer - len(first_prompt)
    assert seq.input_ids[questions_start:first_answer].tolist() == first_prompt
    for fact, start in zip(seq.facts, seq.fact_starts, strict=True):
        end = start + len(tokenizer(fact.sentence + "\n", add_special_tokens=False)["input_ids"])
        assert questions_start - end >= 150
    with pytest.raises(ValueError, match="min_distance"):
        build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(seed),
                              RecallDataConfig(min_distance=500))


def test_same_kind_plants_one_kind_with_distinct_subjects_and_values(tokenizer, train_docs):
    kinds = set()
    for seed in range(6):
        seq = build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(seed),
                                    RecallDataConfig(min_facts=8, max_facts=8, same_kind=True))
        assert len({fact.kind for fact in seq.facts}) == 1
        assert len({fact.value for fact in seq.facts}) == len({fact.prompt for fact in seq.facts}) == 8
        kinds.add(seq.facts[0].kind)
    assert len(kinds) > 1  # the kind itself varies from row to row
    with pytest.raises(ValueError, match="subjects"):
        make_training_facts(30, random.Random(0), same_kind=True)


def test_recall_questions_fixes_the_number_of_answers_per_row(tokenizer, train_docs):
    config = AdaptConfig(seq_len=512, local=32, batch_size=3, recall_share=1.0, recall_questions=4,
                         recall_min_distance=64)
    _, _, answers = sample_training_batch(train_docs, tokenizer, config, step=2)
    first_tokens = answers[:, 1:] & ~answers[:, :-1]
    assert first_tokens.sum(1).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="recall_questions"):
        AdaptConfig(recall_questions=9).validate()


def test_first_value_lm_loss_scores_only_the_first_token_of_each_value():
    generator = torch.Generator().manual_seed(1)
    teacher = torch.randn(2, 10, 32, generator=generator)
    student = torch.randn(2, 10, 32, generator=generator)
    ids = torch.randint(0, 32, (2, 10), generator=generator)
    answers = torch.zeros(2, 10, dtype=torch.bool)
    answers[0, 4:6] = True  # a two-token value: only token 4 (predicted from position 3) is "first"
    answers[1, 8] = True
    weights = torch.where(answers, 5.0, 1.0)
    base = AdaptConfig(seq_len=10, local=2)
    plain = weighted_distill_loss(teacher, student, ids, base, weights, answers)
    first = weighted_distill_loss(teacher, student, ids, AdaptConfig(seq_len=10, local=2, first_value_lm_weight=3.0),
                                  weights, answers)
    ce = torch.nn.functional.cross_entropy
    expected = (ce(student[0, 3], ids[0, 4]) + ce(student[1, 7], ids[1, 8])) / 2
    torch.testing.assert_close(first.first_value_lm, expected)
    torch.testing.assert_close(first.loss, plain.loss + 3.0 * expected)
    with pytest.raises(ValueError, match="first_value_lm_weight"):
        AdaptConfig(first_value_lm_weight=-1).validate()


def test_routes_point_first_value_tokens_at_their_fact_separator(tokenizer, train_docs):
    seq = build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(4),
                                RecallDataConfig(min_facts=5, max_facts=5, min_questions=3, max_questions=3))
    for fact, start, separator in zip(seq.facts, seq.fact_starts, seq.fact_separators, strict=True):
        assert start < separator and tokenizer.decode([int(seq.input_ids[separator])]) == "."
        assert tokenizer.decode(seq.input_ids[start : separator + 1]) == fact.sentence
    routes = seq.routes()
    firsts = (routes >= 0).nonzero().flatten().tolist()
    assert len(firsts) == 3 and all(seq.answer_mask[firsts]) and not any(seq.answer_mask[[i - 1 for i in firsts]])
    assert routes[firsts].tolist() == [seq.fact_separators[i] for i in seq.asked]


def test_route_loss_rewards_the_best_head_on_the_fact_separator():
    from sepllm_core.adapt import route_loss

    attentions = [torch.full((1, 2, 6, 6), 0.1) for _ in range(4)]
    attentions[3][0, 1, 4, 2] = 0.8  # upper layer, head 1: query 4 (predicting token 5) on separator 2
    attentions[0][0, 0, 4, 2] = 0.9  # lower layers do not count
    routes = torch.full((1, 6), -1)
    routes[0, 5] = 2
    loss, attention = route_loss(attentions, routes)
    torch.testing.assert_close(attention, torch.tensor(0.8))
    torch.testing.assert_close(loss, -torch.log(torch.tensor(0.8 + 1e-6)))
    _, with_all_layers = route_loss(attentions, routes, first_layer=0.0)
    torch.testing.assert_close(with_all_layers, torch.tensor(0.9))
    none, _ = route_loss(attentions, torch.full((1, 6), -1))
    assert float(none) == 0.0
    with pytest.raises(ValueError, match="route_weight"):
        AdaptConfig(route_weight=1.0).validate()  # no recall rows to route
    with pytest.raises(ValueError, match="route_from"):
        AdaptConfig(experiment=ExperimentOptions(route_from=1.0)).validate()


def test_open_values_are_made_up_disjoint_from_the_evaluation_and_start_on_an_informative_token(tokenizer,
                                                                                                 train_docs):
    """--recall-open-values: fresh names/numbers/codes, none from a closed list or recall.py, routes still right."""
    closed = {v for t in TEMPLATES for seed in range(20) for v in t.values(random.Random(seed))}
    evaluation = {w.lower() for phrase in (*recall.CODE_WORDS, *recall.CITIES, *recall.PEOPLE, *recall.PLACES)
                  for w in phrase.split()}
    evaluation_stems = ["the password for the", "the room number of", "was born in the city of"]
    config = RecallDataConfig(min_facts=8, max_facts=8, min_questions=8, max_questions=8, min_distance=100,
                              open_values=True)
    values, generators = [], set()
    for seed in range(6):
        seq = build_recall_sequence(train_docs[0], tokenizer, 768, random.Random(seed), config)
        assert len(seq.input_ids) == 768
        for fact, start, separator in zip(seq.facts, seq.fact_starts, seq.fact_separators, strict=True):
            assert fact.kind in {t.kind for t in recall_data.OPEN_TEMPLATES}
            assert not any(stem in fact.sentence.lower() for stem in evaluation_stems)
            assert tokenizer.decode(seq.input_ids[start : separator + 1]) == fact.sentence
            values.append(fact.value)
        routes = seq.routes()
        firsts = (routes >= 0).nonzero().flatten().tolist()
        assert len(firsts) == 8 and routes[firsts].tolist() == [seq.fact_separators[i] for i in seq.asked]
        # the first answer token carries part of the value (" 490" starts at "4", not at the lone space)
        assert all(tokenizer.decode(seq.input_ids[i : i + 1]).strip() for i in firsts)
        for i, index in zip(firsts, seq.asked, strict=True):
            value = seq.facts[index].value
            end = i
            while end < len(seq.answer_mask) and seq.answer_mask[end]:
                end += 1
            assert tokenizer.decode(seq.input_ids[i:end]).strip() == value
        generators |= {t.generator for t in recall_data.OPEN_TEMPLATES if t.kind in {f.kind for f in seq.facts}}
    assert generators == {"name", "number", "code", "amount"}
    assert not closed & set(values)
    assert not evaluation & {w.lower() for v in values for w in v.split()}
    assert not [v for v in values if re.search(r"\b\d{4}\b", v)]  # recall.py's room numbers have 4 digits
    assert len(set(values)) > 0.9 * len(values)  # made up per fact, not a small list


def test_open_share_mixes_made_up_and_closed_rows(tokenizer, train_docs):
    """--recall-open-share: each row is all made-up or all closed-list, in about that share; 1 is the old rows."""
    def stems(templates):
        return [re.compile(re.escape(t.stem).replace(re.escape("{subject}"), ".+") + " .+") for t in templates]

    def from_any(fact, patterns) -> bool:
        return any(p.fullmatch(fact.sentence) for p in patterns)

    open_stems, closed_stems = stems(recall_data.OPEN_TEMPLATES), stems(TEMPLATES)
    mixed = RecallDataConfig(min_distance=50, open_values=True, open_share=0.5)
    rows = [build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(seed), mixed) for seed in range(24)]
    made_up = [all(from_any(f, open_stems) for f in row.facts) for row in rows]
    assert all(made_up[i] or all(from_any(f, closed_stems) for f in row.facts) for i, row in enumerate(rows))
    assert 6 <= sum(made_up) <= 18
    only_open = RecallDataConfig(min_distance=50, open_values=True)
    same = build_recall_sequence(train_docs[0], tokenizer, 512, random.Random(3), only_open)
    assert torch.equal(same.input_ids, build_recall_sequence(
        train_docs[0], tokenizer, 512, random.Random(3), RecallDataConfig(min_distance=50, open_values=True,
                                                                           open_share=1.0)).input_ids)
    with pytest.raises(ValueError, match="open_share"):
        RecallDataConfig(open_share=1.5).validate()
