"""SepLLM self-distillation: the loss falls, checkpoints resume exactly, the CLI registers the adapter."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from sepllm_core.adapt import (
    AdaptConfig,
    AdaptDone,
    AdaptStep,
    CheckpointSaved,
    adapt,
    attach_lora,
    distill_loss,
    load_adapted,
    read_texts,
    sample_batch,
    split_tokens,
    strip_gutenberg,
)
from sepllm_core.training_mask import sepllm_mask

VOCAB = 64
SEPARATOR = 1


class _Tokenizer:
    """Stands in for a tokenizer only where a separator table is passed explicitly."""

    def __len__(self) -> int:
        return VOCAB


def _table(vocab: int = VOCAB) -> torch.Tensor:
    table = torch.zeros(vocab, dtype=torch.bool)
    table[SEPARATOR] = True
    return table


def _docs() -> list[torch.Tensor]:
    """A synthetic stream: segments of 2-6 tokens, each closed by the separator token."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, VOCAB, (4000,), generator=generator)
    ids[torch.randint(0, 4000, (900,), generator=generator)] = SEPARATOR
    return [ids]


@pytest.fixture
def one_thread(torch_threads):
    """Tiny models run faster on one thread; OpenMP barriers stall on a busy 2-core machine."""
    torch_threads(1)


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3,
                         max_position_embeddings=256)
    return LlamaForCausalLM(config).eval()


def _masked_kl(model, batch: torch.Tensor, config: AdaptConfig, table: torch.Tensor) -> float:
    """KL(full-attention base || model under the SepLLM mask) on ``batch``."""
    mask = sepllm_mask(batch, table, initial=config.initial, local=config.local)
    with torch.no_grad():
        with model.disable_adapter():
            teacher = model(input_ids=batch).logits
        student = model(input_ids=batch, attention_mask=mask).logits
    return float(distill_loss(teacher, student, batch, config)[1])


def _run(model, config, out, **kwargs):
    return list(adapt(model, _Tokenizer(), _docs(), config, out, is_separator=_table(), **kwargs))


def _config(**overrides) -> AdaptConfig:
    values = dict(steps=30, seq_len=48, local=6, initial=2, batch_size=4, lr=1e-2, warmup_steps=2,
                  checkpoint_every=0, lora_r=4, lora_alpha=8, save_dtype="")
    values.update(overrides)
    return AdaptConfig(**values)


def test_distillation_lowers_the_masked_kl(tmp_path, one_thread):
    config = _config()
    model = attach_lora(_tiny_llama(), config)
    held_out = sample_batch(_docs(), 8, config.seq_len, seed=99, step=0)
    before = _masked_kl(model, held_out, config, _table())
    events = _run(model, config, tmp_path)
    after = _masked_kl(model, held_out, config, _table())
    assert before > 1e-3
    assert after < 0.85 * before, (before, after)
    steps = [e for e in events if isinstance(e, AdaptStep)]
    assert [e.step for e in steps] == list(range(1, 31))
    assert isinstance(events[-1], AdaptDone) and events[-1].stopped_by == "steps"
    for name in ("adapter_model.safetensors", "adapter_config.json", "sepllm_adapt.json", "history.csv"):
        assert (tmp_path / name).is_file(), name
    meta = json.loads((tmp_path / "sepllm_adapt.json").read_text())
    assert meta["config"]["local"] == 6 and meta["steps_done"] == 30


def test_cancel_then_resume_matches_an_uninterrupted_run(tmp_path, one_thread):
    config = _config(steps=6, checkpoint_every=2)
    straight = attach_lora(_tiny_llama(), config)
    _run(straight, config, tmp_path / "straight")

    cancel = threading.Event()
    first = attach_lora(_tiny_llama(), config)
    events = []
    for event in adapt(first, _Tokenizer(), _docs(), config, tmp_path / "resumed", cancel=cancel,
                       is_separator=_table()):
        events.append(event)
        if isinstance(event, AdaptStep) and event.step == 3:
            cancel.set()
    assert events[-1].stopped_by == "cancelled" and events[-1].steps_done == 3
    assert any(isinstance(e, CheckpointSaved) and e.step == 3 for e in events)

    second = attach_lora(_tiny_llama(), config)  # a fresh process would start from the base weights
    resumed = _run(second, config, tmp_path / "resumed", resume=True)
    assert [e.step for e in resumed if isinstance(e, AdaptStep)] == [4, 5, 6]
    for (name, a), (_, b) in zip(straight.named_parameters(), second.named_parameters(), strict=True):
        if a.requires_grad:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_init_adapter_starts_from_its_weights_and_refuses_another_rank(tmp_path, one_thread):
    first = attach_lora(_tiny_llama(), _config(steps=3))
    _run(first, _config(steps=3), tmp_path / "first")
    follow = _config(steps=1, lr=0.0, init_adapter=str(tmp_path / "first"))
    second = attach_lora(_tiny_llama(), follow)
    _run(second, follow, tmp_path / "second")  # lr 0: the weights stay where they were loaded
    trained = {n: p for n, p in first.named_parameters() if p.requires_grad}
    assert trained and any(float(p.abs().max()) > 0 for n, p in trained.items() if "lora_B" in n)
    for name, param in second.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param, trained[name], msg=name)
    meta = json.loads((tmp_path / "second" / "sepllm_adapt.json").read_text())
    assert meta["config"]["init_adapter"] == str(tmp_path / "first")
    wider = _config(steps=1, lora_r=8, lora_alpha=16, init_adapter=str(tmp_path / "first"))
    with pytest.raises(ValueError, match="does not match this model's LoRA"):
        _run(attach_lora(_tiny_llama(), wider), wider, tmp_path / "third")
    missing = _config(steps=1, init_adapter=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="holds no adapter_model.safetensors"):
        _run(attach_lora(_tiny_llama(), missing), missing, tmp_path / "fourth")


def test_plain_rows_get_their_own_local_window():
    """plain_local widens the mask of plain-text rows only; recall rows keep ``local``."""
    from sepllm_core.adapt import student_mask

    ids = _docs()[0][:96].reshape(2, 48)
    answers = torch.zeros(2, 48, dtype=torch.bool)
    answers[0, 40:43] = True  # row 0 is a recall row, row 1 plain text
    narrow = sepllm_mask(ids, _table(), initial=2, local=6)
    wide = sepllm_mask(ids, _table(), initial=2, local=24)
    got = student_mask(ids, _table(), _config(plain_local=24), answers)
    assert torch.equal(got[0], narrow[0]) and torch.equal(got[1], wide[1])
    assert torch.equal(student_mask(ids, _table(), _config(), answers), narrow)  # 0: the same as local
    assert torch.equal(student_mask(ids, _table(), _config(plain_local=24), None), wide)  # all plain
    with pytest.raises(ValueError, match="plain_local window 48"):
        _config(plain_local=48).validate()


def test_config_and_text_errors(tmp_path):
    with pytest.raises(ValueError, match="shorter than seq_len"):
        AdaptConfig(seq_len=64, local=64).validate()
    with pytest.raises(ValueError, match="too short"):
        sample_batch([torch.arange(10)], 1, 64, seed=0, step=0)
    empty = tmp_path / "empty.txt"
    empty.write_text("*** START OF THE BOOK ***\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no text"):
        read_texts([empty])
    assert strip_gutenberg("head\n*** START OF X ***\nbody\n*** END OF X ***\nlicence") == "body\n"


def test_experiment_options_parse_and_refuse_in_one_line():
    """``--experiment NAME=VALUE`` reaches ExperimentOptions by type; a bad item names itself and the choices."""
    from app.cli.adapt_cmd import experiment_options
    from app.errors import ModelError

    options = experiment_options(["lm_weight=0.5", "recall-same-kind=yes", "target_modules=k_proj, v_proj"])
    assert (options.lm_weight, options.recall_same_kind, options.target_modules) == (0.5, True, ["k_proj", "v_proj"])
    assert experiment_options([]).target_modules == "all-linear" and experiment_options([]).route_from == 0.5
    for bad, said in (("temperature=2", "NAME one of lm_weight"), ("route_from=high", "'high' is not a value"),
                      ("recall_same_kind=maybe", "recall_same_kind"), ("lm_weight", "not NAME=VALUE")):
        with pytest.raises(ModelError, match=said) as error:
            experiment_options([bad])
        assert "\n" not in str(error.value)


def test_default_model_adapts_and_the_adapter_loads(default_model_dir, shared_data, tmp_path, one_thread):
    """A few steps on the real model and a real book; the saved adapter, merged, beats the base under the mask."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.bfloat16)
    book = shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"
    train, heldout = split_tokens(read_texts([book]), tokenizer, 0.1)
    config = AdaptConfig(steps=3, seq_len=64, local=12, batch_size=2, lr=2e-3, warmup_steps=1,
                         checkpoint_every=0)
    model = attach_lora(model, config)
    from sepllm_core.adapt import separator_lookup

    table = separator_lookup(tokenizer)
    batch = sample_batch(heldout, 2, config.seq_len, seed=5, step=0)
    before = _masked_kl(model, batch, config, table)
    events = list(adapt(model, tokenizer, train, config, tmp_path, base_model="smollm2", is_separator=table))
    losses = [e.kl for e in events if isinstance(e, AdaptStep)]
    after = _masked_kl(model, batch, config, table)
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    assert after < before, (before, after, losses)

    # The bf16 adapter file applies to a fresh base model and reproduces the trained student.
    fresh = AutoModelForCausalLM.from_pretrained(default_model_dir, dtype=torch.bfloat16)
    merged = load_adapted(fresh, tmp_path, merge=True)
    mask = sepllm_mask(batch, table, initial=config.initial, local=config.local)
    with torch.no_grad():
        expected = model(input_ids=batch, attention_mask=mask).logits.float()
        got = merged(input_ids=batch, attention_mask=mask).logits.float()
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.95
    assert (tmp_path / "adapter_model.safetensors").stat().st_size < 20_000_000


def test_cli_adapt_registers_the_adapter_and_resumes(installed_home, shared_data, capsys, one_thread):
    from app.cli import main
    from app.engine import registry

    book = shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"
    out = installed_home / "adapted"
    argv = ["adapt", "smollm2-135m-instruct", "--text", str(book), "--seq-len", "48", "--local", "8",
            "--out", str(out), "--device", "cpu", "--checkpoint-every", "1"]
    assert main([*argv, "--steps", "2"]) == 0
    err = capsys.readouterr().err
    assert "2/2" in err and "checkpoint at step 1" in err
    entry = registry.load()["smollm2-135m-instruct-sepllm"]
    assert entry.source == "adapter" and entry.path == str(out)
    assert entry.notes["base"] == "smollm2-135m-instruct" and entry.notes["separators"] == "default"
    assert (out / "adapter_model.safetensors").is_file()

    assert main([*argv, "--steps", "3"]) == 4  # a checkpoint exists: refused without --resume
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--steps", "3", "--resume", "--merge"]) == 0
    history = (out / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3"]
    merged = registry.load()["smollm2-135m-instruct-sepllm"]
    assert merged.source == "folder" and (out / "merged" / "model.safetensors").is_file()
    assert (out / "merged" / "tokenizer.json").is_file()


def test_cli_adapt_with_recall_sequences_records_the_answer_loss(installed_home, shared_data, capsys, one_thread):
    """--recall-share 1: every row is a recall sequence; the answer-token KL is logged and saved."""
    import csv

    from app.cli import main
    from app.engine import registry

    book = shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"
    out = installed_home / "recall-adapted"
    argv = ["adapt", "smollm2-135m-instruct", "--text", str(book), "--seq-len", "256", "--local", "16",
            "--separators", "sentence", "--recall-share", "1", "--answer-weight", "10",
            "--experiment", "answer_lm_weight=0.5",
            "--out", str(out), "--device", "cpu", "--steps", "2", "--checkpoint-every", "0"]
    assert main(argv) == 0
    assert "100% recall sequences" in capsys.readouterr().err
    with open(out / "history.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(float(row["answer_kl"]) >= 0 and float(row["answer_lm"]) > 0 for row in rows)
    assert all(row["full_answer_kl"] == "" for row in rows)  # off by default
    meta = json.loads((out / "sepllm_adapt.json").read_text())
    assert meta["config"]["recall_share"] == 1.0 and meta["config"]["answer_weight"] == 10.0
    assert meta["config"]["experiment"]["answer_lm_weight"] == 0.5
    assert registry.load()["smollm2-135m-instruct-sepllm"].notes["recall_share"] == 1.0


def test_cli_adapt_recall_options_reach_the_run(installed_home, shared_data, capsys, one_thread):
    """--experiment, --first-value-lm-weight, --route-weight and --recall-* land in the adapter and its history."""
    import csv

    from app.cli import main

    book = shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"
    out = installed_home / "routed"
    argv = ["adapt", "smollm2-135m-instruct", "--text", str(book), "--seq-len", "256", "--local", "16",
            "--separators", "sentence", "--recall-share", "1", "--first-value-lm-weight", "2",
            "--recall-min-distance", "40", "--recall-questions", "3", "--experiment", "recall_same_kind=true",
            "--recall-open-values", "--experiment", "target_modules=k_proj,v_proj", "--rank", "4",
            "--route-weight", "0.5", "--experiment", "route_from=0.25",
            "--full-answer-weight", "1.5", "--lr-final", "0.5", "--recall-open-share", "0.5", "--seed", "7",
            "--out", str(out), "--device", "cpu", "--steps", "1", "--checkpoint-every", "0"]
    assert main(argv) == 0
    capsys.readouterr()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["k_proj", "v_proj"] and adapter["r"] == 4
    config = json.loads((out / "sepllm_adapt.json").read_text())["config"]
    assert config["first_value_lm_weight"] == 2.0 and config["recall_min_distance"] == 40
    assert config["recall_questions"] == 3 and config["experiment"]["recall_same_kind"] is True
    assert config["recall_open_values"] is True
    assert config["route_weight"] == 0.5 and config["experiment"]["route_from"] == 0.25
    assert config["full_answer_weight"] == 1.5 and config["lr_final"] == 0.5
    assert config["recall_open_share"] == 0.5 and config["seed"] == 7 and config["init_adapter"] == ""
    with open(out / "history.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and float(rows[0]["first_value_lm"]) > 0
    assert 0 < float(rows[0]["route_attention"]) <= 1  # the route loss ran, on eager attention probabilities
    assert float(rows[0]["full_answer_kl"]) >= 0  # the full-attention answer term ran (0 while LoRA B is 0)


def _cats_heldout(tokenizer, shared_data) -> list[torch.Tensor]:
    """The held-out tenth of the Cats book, as the evaluation splits it."""
    book = shared_data / "books" / "gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt"
    return split_tokens(read_texts([book]), tokenizer, 0.1)[1]


@pytest.mark.parametrize("open_values", [False, True])
def test_answer_probe_scores_the_first_value_token(default_model, shared_data, one_thread, open_values):
    """The probe's log-probability and rank of the first value token: full attention beats a tiny window."""
    from benchmarks.adapt_eval import answer_probe
    from sepllm_core.adapt import separator_lookup

    model, tokenizer = default_model
    heldout = _cats_heldout(tokenizer, shared_data)
    probe = answer_probe(model, tokenizer, heldout, separator_lookup(tokenizer, "sentence"), seq_len=384,
                         local=8, sequences=2, route=True, open_values=open_values)
    assert probe["far_first_tokens"] >= 2
    assert probe["full_far_first_logp"] <= 0 and probe["masked_far_first_logp"] <= 0
    assert probe["full_far_first_logp"] > probe["masked_far_first_logp"]
    assert probe["masked_far_first_rank"] >= 1
    assert 0 < probe["masked_far_first_route"] <= 1
    assert model.config._attn_implementation == "sdpa"  # the route forward switched back


def test_adapt_eval_recall_only_measures_the_chosen_caches_with_made_up_values(default_model, shared_data,
                                                                               one_thread):
    """--recall-only --policies --open-values --no-fill: no perplexity, only those caches, the options recorded."""
    from benchmarks.adapt_eval import evaluate
    from sepllm_core.adapt import separator_lookup

    model, tokenizer = default_model
    heldout = _cats_heldout(tokenizer, shared_data)
    result = evaluate(model, tokenizer, heldout, separator_lookup(tokenizer, "sentence"), budget=256,
                      recall_tokens=700, seeds=(0,), window_len=512, max_windows=1, separators=64, local=32,
                      fill_recent=False, open_values=True, policies=("sepllm", "full"), perplexity=False)
    assert "perplexity" not in result and sorted(result["recall"]) == ["full", "sepllm"]
    assert result["sepllm_fill_recent"] is False and result["open_values"] is True
    assert result["recall"]["full"]["recall_early_count"] == "5/5"  # made-up values are copied under full attention


def test_streamed_perplexity_token_by_token_equals_the_mask_emulation(default_model, shared_data, one_thread):
    """Read one token at a time with original positions, the real caches score what budget_mask emulates."""
    from benchmarks.adapt_eval import budget_perplexity, streamed_perplexity
    from sepllm_core.adapt import separator_lookup

    model, tokenizer = default_model
    heldout = [t[:200] for t in _cats_heldout(tokenizer, shared_data)]
    table = separator_lookup(tokenizer, "sentence")
    options = dict(budget=96, separators=24, local=24, window_len=200, max_windows=1)
    emulated = budget_perplexity(model, heldout, table, **options)
    streamed = streamed_perplexity(model, heldout, table, positions="original", chunk_size=1, **options)
    for policy in ("full", "window", "sepllm"):
        assert streamed[policy] == pytest.approx(emulated[policy], rel=0.02), policy
    assert streamed["window"] != pytest.approx(streamed["full"], rel=1e-3)  # the budget bites
    shifted = streamed_perplexity(model, heldout, table, positions="shifted", chunk_size=16, **options)
    assert shifted["full"] == pytest.approx(emulated["full"], rel=0.02)  # nothing evicted, nothing renumbered
    assert 0.8 < shifted["sepllm"] / emulated["sepllm"] < 1.25


def test_separator_readout_reports_every_layer_and_a_constant_state_reads_nothing(default_model, shared_data,
                                                                                   one_thread):
    from benchmarks.adapt_eval import separator_readout
    from sepllm_core.adapt import separator_lookup

    model, tokenizer = default_model
    heldout = _cats_heldout(tokenizer, shared_data)
    readout = separator_readout(model, tokenizer, heldout, separator_lookup(tokenizer, "sentence"), seq_len=256,
                                sequences=8)
    layers = model.config.num_hidden_layers + 1
    assert len(readout["separator"]) == len(readout["control"]) == layers
    assert readout["train"] > 0 and readout["test"] > 0 and 0 < readout["chance"] <= 1
    assert all(0 <= a <= 1 for a in readout["separator"] + readout["control"])
    # layer 0 is the embedding of '.', the same vector for every fact: the readout is one fixed guess per kind
    assert readout["separator"][0] <= readout["chance"] + 0.35


@pytest.mark.parametrize("first_layer", [0.0, 0.5])
def test_captured_route_loss_equals_the_route_loss_on_eager_probabilities(first_layer, one_thread):
    """The route loss from sdpa plus only the routed rows matches eager attention's, value and gradient."""
    from sepllm_core.adapt import captured_route_loss, route_loss, use_route_attention
    from sepllm_core.training_mask import to_attention_mask

    model = _tiny_llama().float()
    ids = _docs()[0][:40][None]  # (1, 40)
    mask = sepllm_mask(ids, _table(), initial=2, local=4)
    separators = ids[0].eq(SEPARATOR).nonzero().flatten().tolist()
    routes = torch.full(ids.shape, -1)
    routes[0, 30], routes[0, 37] = separators[1], separators[2]  # both beyond the local window
    model.set_attn_implementation("eager")
    eager = model(input_ids=ids, attention_mask=to_attention_mask(mask, "eager", torch.float32), use_cache=False,
                  output_attentions=True)
    expected, expected_attention = route_loss(eager.attentions, routes, first_layer)
    expected_grad = torch.autograd.grad(expected, model.model.layers[1].self_attn.k_proj.weight)[0]
    use_route_attention(model)
    captured, loss, attention = captured_route_loss(model, routes, first_layer, input_ids=ids, attention_mask=mask,
                                                    use_cache=False)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention, expected_attention, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(captured.logits, eager.logits, atol=1e-4, rtol=1e-4)  # the outputs are sdpa's
    grad = torch.autograd.grad(loss, model.model.layers[1].self_attn.k_proj.weight)[0]
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-4)
    assert float(expected.detach()) > 0 and expected_grad.abs().sum() > 0
    plain = model(input_ids=ids, attention_mask=mask, use_cache=False)  # no capture: plain sdpa
    torch.testing.assert_close(plain.logits, captured.logits)


def _randomized_adapter(config: AdaptConfig):
    """A tiny LoRA model whose adapter is not zero, so the student differs from its teacher."""
    model = attach_lora(_tiny_llama().float(), config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model


def test_full_answer_kl_scores_the_answer_tokens_under_full_attention(one_thread):
    """The unmasked student's KL on the answer tokens, with a gradient; the route attention leaves it alone."""
    from sepllm_core.adapt import answer_target, full_answer_kl, use_route_attention

    model = _randomized_adapter(_config())
    ids = torch.stack([_docs()[0][:40], _docs()[0][40:80]])  # (2, 40)
    answers = torch.zeros(ids.shape, dtype=torch.bool)
    answers[0, [30, 31, 37]] = True  # row 1 has no answers: it is not run again
    with torch.no_grad(), model.disable_adapter():
        teacher = model(input_ids=ids, use_cache=False).logits  # (2, 40, V)
    target = answer_target(teacher, answers)
    assert target is not None and target.rows.tolist() == [0] and target.positions.tolist() == [29, 30, 36]
    loss = full_answer_kl(model, ids, target)

    student = model(input_ids=ids[:1], use_cache=False).logits[0, [29, 30, 36]]  # full attention, (3, V)
    teacher_logp = teacher[0, [29, 30, 36]].log_softmax(-1)
    expected = (teacher_logp.exp() * (teacher_logp - student.log_softmax(-1))).sum(-1).mean()
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert float(loss.detach()) > 1e-3
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    assert sum(float(g.abs().sum()) for g in torch.autograd.grad(loss, lora)) > 0
    use_route_attention(model)  # the training run's attention: no capture is active outside the route loss
    torch.testing.assert_close(full_answer_kl(model, ids, target), loss, atol=1e-5, rtol=1e-5)
    assert answer_target(teacher, torch.zeros_like(answers)) is None


@pytest.mark.parametrize("full_answer_weight", [0.0, 2.0])
def test_full_answer_weight_adds_its_term_to_the_loss(tmp_path, one_thread, monkeypatch, full_answer_weight):
    """With W > 0 each step's loss is KL + W * full_answer_kl and the adapter trains differently; W = 0 changes nothing."""
    import sepllm_core.adapt.loop as adapt_module
    from sepllm_core.adapt import TrainingBatch

    def rows_with_answers(docs, tokenizer, config, step):
        ids = sample_batch(docs, config.batch_size, config.seq_len, config.seed, step)
        answers = torch.zeros(ids.shape, dtype=torch.bool)
        answers[0, -6:-3] = True  # the first row is a "recall row"
        weights = torch.where(answers, 5.0, 1.0)
        return TrainingBatch(ids, weights, answers)

    monkeypatch.setattr(adapt_module, "training_batch", rows_with_answers)
    runs = {}
    for weight in {0.0, full_answer_weight}:
        config = _config(steps=4, recall_share=0.5, full_answer_weight=weight)
        model = attach_lora(_tiny_llama(), config)
        history = [e for e in _run(model, config, tmp_path / str(weight)) if isinstance(e, AdaptDone)][0].history
        runs[weight] = (model, history)
    model, history = runs[full_answer_weight]
    if full_answer_weight == 0:
        assert all("full_answer_kl" not in row for row in history)
        assert all(row["loss"] == pytest.approx(row["kl"]) for row in history)
        return
    assert all(row["loss"] == pytest.approx(row["kl"] + 2.0 * row["full_answer_kl"]) for row in history)
    assert history[-1]["full_answer_kl"] > 0  # the adapter moved the full-attention path: the term is live
    plain_model, plain_history = runs[0.0]
    assert history[0]["kl"] == pytest.approx(plain_history[0]["kl"])  # the same first batch and student
    moved = [not torch.allclose(a, b) for (n, a), (_, b) in
             zip(model.named_parameters(), plain_model.named_parameters(), strict=True) if a.requires_grad]
    assert any(moved)  # the term's gradient reached the adapter
    with open(tmp_path / "2.0" / "history.csv", encoding="utf-8") as handle:
        assert "full_answer_kl" in handle.readline()


def test_answer_probe_through_a_cache_matches_full_attention_until_it_evicts(default_model, shared_data, one_thread):
    """--probe-cache: a cache that holds the whole sequence scores as full attention; a tiny one loses far facts."""
    from benchmarks.adapt_eval import answer_probe
    from sepllm_core.adapt import separator_lookup
    from sepllm_core.recall import cache_config_for

    model, tokenizer = default_model
    heldout = _cats_heldout(tokenizer, shared_data)
    table = separator_lookup(tokenizer, "sentence")
    kwargs = dict(seq_len=448, local=8, sequences=2, open_values=True, min_distance=128)
    roomy = answer_probe(model, tokenizer, heldout, table, cache_config=cache_config_for("sepllm", 512), **kwargs)
    assert roomy["far_first_tokens"] >= 2
    assert roomy["kl_far"] < 0.05
    assert roomy["masked_far_first_logp"] == pytest.approx(roomy["full_far_first_logp"], abs=0.05)
    tiny = answer_probe(model, tokenizer, heldout, table,
                        cache_config=cache_config_for("sepllm", 64, separators=16, local=16).with_(chunk_size=64),
                        **kwargs)
    assert tiny["masked_far_first_logp"] < roomy["masked_far_first_logp"] - 1.0
