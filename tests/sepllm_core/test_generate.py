"""Session: chunked prefill events, greedy decoding equal to a plain loop, stops, cancel, sampling."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import DynamicCache

from sepllm_core.config import CacheConfig
from sepllm_core.events import Done, MemorySample, Progress, Token
from sepllm_core.generate import SamplingConfig, Session, StreamDecoder, choose_token, repetition_loop

PROMPT = [{"role": "user", "content": "List three facts about whales."}]
STATS_KEYS = {"input_tokens", "output_tokens", "kv_bytes_peak", "kv_bytes_full_equivalent", "kv_entries_peak",
              "prefill_tokens_per_s", "decode_tokens_per_s", "seconds"}


@pytest.fixture(scope="module")
def prompt_ids(default_model):
    _, tokenizer = default_model
    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


@pytest.fixture(scope="module")
def reference_tokens(default_model, prompt_ids):
    """Greedy tokens from a plain transformers loop with a DynamicCache."""
    model, _ = default_model
    cache = DynamicCache(config=model.config)
    out, ids = [], torch.tensor([prompt_ids])
    with torch.inference_mode():
        for _ in range(16):
            logits = model(input_ids=ids, cache=cache, use_cache=True).logits[0, -1]
            token = int(logits.argmax())
            out.append(token)
            ids = torch.tensor([[token]])
    return out


def _run(session, prompt_ids, max_new_tokens=16, **kwargs):
    events = list(session.feed(prompt_ids, protect=True))
    events += list(session.generate(max_new_tokens, **kwargs))
    return events


@pytest.mark.parametrize("cfg", [CacheConfig.full().with_(chunk_size=16),
                                 CacheConfig.balanced().with_(chunk_size=16)], ids=["full", "sepllm"])
def test_greedy_matches_plain_loop(default_model, prompt_ids, reference_tokens, cfg):
    model, tokenizer = default_model
    session = Session(model, tokenizer, cfg)
    events = _run(session, prompt_ids)
    tokens = [e.token_id for e in events if isinstance(e, Token)]
    done = events[-1]
    assert isinstance(done, Done) and done.stopped_by in ("max_tokens", "eos")
    assert tokens == reference_tokens[: len(tokens)] and len(tokens) >= 8
    assert done.text == "".join(e.text for e in events if isinstance(e, Token))
    assert done.text == tokenizer.decode(tokens, skip_special_tokens=True)
    assert set(done.stats) >= STATS_KEYS and done.stats["input_tokens"] == len(prompt_ids)
    progress = [e for e in events if isinstance(e, Progress) and e.phase == "prefill"]
    assert [p.tokens_done for p in progress] == [min(16 * (k + 1), len(prompt_ids)) for k in range(len(progress))]
    assert progress[-1].tokens_done == progress[-1].tokens_total == len(prompt_ids)
    assert any(isinstance(e, MemorySample) for e in events)


def test_bounded_cache_while_decoding_protected_output(default_model, prompt_ids):
    model, tokenizer = default_model
    cfg = CacheConfig(initial=4, separators=4, local=8, max_entries=24, chunk_size=8)
    session = Session(model, tokenizer, cfg)
    events = list(session.feed(prompt_ids))
    events += list(session.generate(12, protect_output=True, detect_repetition=False))
    stats = session.stats()
    assert stats["kv_entries_peak"] <= 24 + 8
    assert stats["kv_bytes_peak"] < stats["kv_bytes_full_equivalent"]
    generated = [e for e in events if isinstance(e, Token)]
    # every decoded token except a stop is fed back protected, so the newest entries are all protected
    assert int(session.cache._prot[: session.cache.length].sum()) == len(generated)


def test_stop_string_cuts_text(default_model, prompt_ids, reference_tokens):
    model, tokenizer = default_model
    full_text = tokenizer.decode(reference_tokens, skip_special_tokens=True)
    stop = full_text[len(full_text) // 2: len(full_text) // 2 + 4]
    session = Session(model, tokenizer, CacheConfig.full())
    events = _run(session, prompt_ids, stop_strings=[stop])
    done = events[-1]
    assert done.stopped_by == "stop_string"
    assert done.text == full_text[: full_text.index(stop)]
    assert "".join(e.text for e in events if isinstance(e, Token)) == done.text


def test_eos_stops(default_model, prompt_ids, reference_tokens):
    model, tokenizer = default_model
    session = Session(model, tokenizer, CacheConfig.full())
    session.eos_ids = {reference_tokens[3]}
    done = _run(session, prompt_ids)[-1]
    assert done.stopped_by == "eos" and done.stats["output_tokens"] == 3


def test_min_new_tokens_holds_back_eos(default_model, prompt_ids, reference_tokens):
    """The greedy path's 4th token made an end-of-text: with min_new_tokens=6 it is masked for 6 steps."""
    model, tokenizer = default_model
    session = Session(model, tokenizer, CacheConfig.full())
    session.eos_ids = {reference_tokens[3]}
    list(session.feed(prompt_ids))
    events = list(session.generate(12, min_new_tokens=6, detect_repetition=False))
    ids = [e.token_id for e in events if isinstance(e, Token)]
    assert ids[:3] == reference_tokens[:3] and reference_tokens[3] not in ids[:6]
    assert len(ids) >= 6 and events[-1].stopped_by in ("eos", "max_tokens")


def test_cancel_within_one_chunk_and_one_token(default_model, prompt_ids):
    model, tokenizer = default_model
    cancel = threading.Event()
    session = Session(model, tokenizer, CacheConfig.full().with_(chunk_size=8), cancel=cancel)
    events = []
    for event in session.feed(prompt_ids):
        events.append(event)
        if isinstance(event, Progress):
            cancel.set()
    assert isinstance(events[-1], Done) and events[-1].stopped_by == "cancelled"
    assert session.cache.tokens_seen == 8 and session.cancelled

    cancel.clear()
    session = Session(model, tokenizer, CacheConfig.full(), cancel=cancel)
    list(session.feed(prompt_ids))
    tokens = []
    for event in session.generate(50):
        if isinstance(event, Token):
            tokens.append(event)
            if len(tokens) == 3:
                cancel.set()
    assert event.stopped_by == "cancelled" and len(tokens) == 3


def test_generate_needs_a_prompt(default_model):
    model, tokenizer = default_model
    with pytest.raises(ValueError, match="feed"):
        list(Session(model, tokenizer, CacheConfig.full()).generate(3))


def test_sampling_is_seeded_and_top_p_tiny_is_greedy(default_model, prompt_ids, reference_tokens):
    model, tokenizer = default_model

    def sample(sampling):
        session = Session(model, tokenizer, CacheConfig.full())
        return [e.token_id for e in _run(session, prompt_ids, max_new_tokens=4, sampling=sampling)
                if isinstance(e, Token)]

    hot = SamplingConfig(temperature=1.5, top_p=0.95, seed=7)
    assert sample(hot) == sample(hot)
    assert sample(SamplingConfig(temperature=1.0, top_p=1e-6, seed=1)) == reference_tokens[:4]


def test_choose_token_repetition_penalty():
    logits = torch.tensor([2.0, 1.9, -1.0, 0.5])
    assert choose_token(logits, SamplingConfig(), []) == 0
    assert choose_token(logits, SamplingConfig(repetition_penalty=1.2), [0]) == 1
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)


def test_repetition_loop_detector():
    assert repetition_loop([5] * 48)
    assert repetition_loop(list(range(10)) + [1, 2, 3, 4, 5, 6, 7] * 8)
    assert not repetition_loop([5] * 40)
    assert not repetition_loop(list(range(200)))
    assert not repetition_loop([1, 2, 3] * 10 + [4])


def test_stream_decoder_holds_partial_utf8(default_model):
    _, tokenizer = default_model
    text = "Whales 🐋 swim; 鲸鱼在游泳。 Done."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = StreamDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert any(p == "" for p in pieces[:-1])  # the emoji/CJK bytes arrive over several tokens


def test_turn_markers_end_the_answer(default_model):
    """The end of a turn and the start of a new one both stop decoding (the default model is ChatML)."""
    model, tokenizer = default_model
    session = Session(model, tokenizer, CacheConfig.full())
    vocab = tokenizer.get_vocab()
    assert {vocab["<|im_end|>"], vocab["<|im_start|>"]} <= session.eos_ids
    assert not {vocab[t] for t in ("user", ".", "\n") if t in vocab} & session.eos_ids
