"""Before/after SepLLM adaptation on held-out text: perplexity at equal budget and planted-fact recall by depth.

Perplexity at equal budget runs each held-out window in one forward under a mask that emulates
the cache token by token (``sepllm_core.training_mask.budget_mask``, original positions): full
attention, the recent window (initial + newest), and SepLLM (initial + newest separators + newest
tokens), scoring only tokens past the budget. With ``--positions shifted`` (kept entries renumbered
contiguously, which no single-forward mask can emulate) each window is streamed through the real
caches in chunks of ``--ppl-chunk`` tokens instead. Recall is ``sepllm_core.recall.measure_recall``
streamed through the real ``sepllm_core`` caches, on held-out text.

    .venv/bin/python -m benchmarks.adapt_eval --adapter DIR --text ../shared/data/books/*.txt \\
        --tokens 6144 --seeds 0,1,2 --out adapt_eval.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sepllm_core.adapt import read_texts, separator_lookup, split_tokens
from sepllm_core.training_mask import budget_mask, to_attention_mask

POLICIES = ("full", "window", "sepllm")


def budget_perplexity(model: Any, docs: Sequence[torch.Tensor], table: torch.Tensor, *, budget: int = 1024,
                      initial: int = 4, separators: int | None = None, local: int | None = None,
                      window_len: int = 4096, max_windows: int = 8,
                      policies: Sequence[str] = POLICIES, fill_recent: bool = True) -> dict[str, float]:
    """Perplexity of tokens past ``budget`` in up to ``max_windows`` windows, per cache policy.

    ``sepllm`` keeps ``separators`` (default budget/4) separators and at least ``local`` (default
    budget/4) newest tokens, filling the rest of the budget with newer tokens, as the cache does;
    with ``fill_recent=False`` exactly ``local`` newest tokens (the no-fill cache read token by token).
    """
    if window_len <= budget:
        raise ValueError(f"window_len {window_len} must exceed the budget {budget} for the budget to bite")
    separators = budget // 4 if separators is None else separators
    local = budget // 4 if local is None else local
    device = next(model.parameters()).device
    attn = getattr(model.config, "_attn_implementation", None) or "sdpa"
    dtype = next(model.parameters()).dtype
    windows = [doc[start : start + window_len] for doc in docs
               for start in range(0, doc.numel() - window_len + 1, window_len)][:max_windows]
    if not windows:
        raise ValueError(f"held-out text is shorter than one window of {window_len} tokens")
    nll = {p: 0.0 for p in policies}
    scored = 0
    for window in windows:
        ids = window[None].to(device)  # (1, W)
        targets = ids[0, budget + 1 :]
        scored += targets.numel()
        for policy in policies:
            if policy == "full":
                mask = None
            elif policy == "window":
                mask = budget_mask(ids, table, initial=initial, local=budget - initial, separators=0)
            else:
                mask = budget_mask(ids, table, initial=initial, local=local, separators=separators,
                                   max_entries=budget if fill_recent else None)
            kwargs = {} if mask is None else {"attention_mask": to_attention_mask(mask, attn, dtype)}
            with torch.no_grad():
                logits = model(input_ids=ids, use_cache=False, **kwargs).logits[0, budget:-1]  # (W-b-1, V)
            nll[policy] += float(torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum"))
    return {p: math.exp(nll[p] / scored) for p in policies}


def streamed_perplexity(model: Any, docs: Sequence[torch.Tensor], table: torch.Tensor, *, budget: int = 1024,
                        separators: int | None = None, local: int | None = None, window_len: int = 4096,
                        max_windows: int = 8, policies: Sequence[str] = POLICIES, fill_recent: bool = True,
                        positions: str = "shifted", chunk_size: int = 64) -> dict[str, float]:
    """:func:`budget_perplexity`'s windows and scored tokens, read through the real caches in chunks.

    For position modes a mask cannot emulate (``shifted``). A token sees the cache (at most
    ``budget`` entries) plus the earlier tokens of its chunk, so every cache gets up to
    ``chunk_size - 1`` entries more than ``budget`` at the same moments.
    """
    from sepllm_core.perplexity import stream_perplexity
    from sepllm_core.recall import cache_config_for

    windows = [doc[start : start + window_len] for doc in docs
               for start in range(0, doc.numel() - window_len + 1, window_len)][:max_windows]
    if not windows:
        raise ValueError(f"held-out text is shorter than one window of {window_len} tokens")
    result = {}
    for policy in policies:
        config = (cache_config_for(policy, budget, separators=separators, local=local, fill_recent=fill_recent,
                                   chunk_size=chunk_size, positions=positions) if policy == "sepllm"
                  else cache_config_for(policy, budget, chunk_size=chunk_size, positions=positions))
        nll, scored = 0.0, 0
        for window in windows:  # targets past the budget, as budget_perplexity scores them
            read = stream_perplexity(model, None, None, tokens=window.numel(), config=config, ids=window.tolist(),
                                     score_from=budget + 1, separators=table)
            nll += math.log(read["ppl"]) * read["tokens_scored"]
            scored += read["tokens_scored"]
        result[policy] = math.exp(nll / scored)
    return result


def recall_by_policy(model: Any, tokenizer: Any, text: str, table: torch.Tensor, *, budget: int = 1024,
                     tokens: int = 6144, seeds: Sequence[int] = (0, 1, 2), separators: int | None = None,
                     local: int | None = None, policies: Sequence[str] = POLICIES, fill_recent: bool = True,
                     open_values: bool = False, positions: str = "auto") -> dict[str, dict[str, Any]]:
    """Planted-fact recall through each cache; separators come from ``table``.

    ``separators`` / ``local`` size the SepLLM cache (default budget/4 each; the rest of the budget
    holds the newest tokens unless ``fill_recent`` is False). ``open_values``: made-up values.
    ``positions``: every cache's position mode (``CacheConfig.positions``).
    """
    from sepllm_core.cache import build_cache
    from sepllm_core.positions import find_rotary_module
    from sepllm_core.recall import cache_config_for, measure_recall

    rotary = find_rotary_module(model)
    results = {}
    for policy in policies:
        config = (cache_config_for(policy, budget, separators=separators, local=local, fill_recent=fill_recent,
                                   positions=positions)
                  if policy == "sepllm" else cache_config_for(policy, budget, positions=positions))
        report = measure_recall(
            model, tokenizer, text, tokens=tokens, cache_name=policy, seeds=seeds, open_values=open_values,
            cache_factory=lambda config=config: build_cache(model.config, config, table, rotary=rotary))
        full = report.to_dict()
        summary = {k: full[k] for k in ("recall_early", "recall_late", "recall_early_count",
                                        "recall_late_count", "mean_rank_early", "mean_rank_late",
                                        "tokens", "seconds") if k in full}
        summary["by_depth"] = by_depth(full["facts"])
        results[policy] = summary
    return results


def _streamed_logprobs(model: Any, ids: torch.Tensor, table: torch.Tensor, config: Any) -> torch.Tensor:
    """Log-probs [L, vocab] of ``ids`` [1, L] streamed through a fresh bounded cache, chunk by chunk."""
    from sepllm_core.cache import build_cache
    from sepllm_core.positions import find_rotary_module
    from sepllm_core.stream import stream_chunks

    cache = build_cache(model.config, config, table, rotary=find_rotary_module(model))
    return torch.cat([torch.log_softmax(chunk.logits, dim=-1)
                      for chunk in stream_chunks(model, cache, ids, config.chunk_size, logits_to_keep=0)])  # (L, V)


def answer_probe(model: Any, tokenizer: Any, docs: Sequence[torch.Tensor], table: torch.Tensor, *,
                 seq_len: int = 1024, local: int = 128, initial: int = 4, sequences: int = 8, seed: int = 12345,
                 route: bool = False, open_values: bool = False, min_distance: int = 0,
                 cache_config: Any = None) -> dict[str, float]:
    """Answer-token accuracy of the model under the SepLLM training mask on held-out recall sequences.

    Uses ``sepllm_core.recall_data`` sequences (its own templates) built from ``docs``; an answer
    counts as "far" when its fact sentence starts more than ``local`` tokens before it. Returns the
    top-1 accuracy (greedy token == planted value token) under full attention and under the mask,
    for all far answer tokens and for the first token of each far value (``*_far_first``: later
    tokens of a multi-token value are predictable from the first), and the mean KL(full || masked)
    on far answer tokens. ``*_far_first_logp`` is the mean log-probability of the planted first value
    token and ``masked_far_first_rank`` its mean rank under the mask: finer signals than top-1.
    With ``route``, ``masked_far_first_route`` is the mean over far first value tokens of the largest
    attention any head of the upper half of layers pays to the fact's separator (one more masked
    forward in eager attention, which returns probabilities). With ``open_values`` the sequences
    use made-up values (``RecallDataConfig.open_values``) instead of the closed lists; with
    ``min_distance`` every fact ends at least that many tokens before the questions. With
    ``cache_config`` (a ``CacheConfig``) the "masked" scores come from streaming each sequence
    through that bounded cache in 256-token chunks, as the recall evaluation does, instead of
    from the training mask.
    """
    import random

    from sepllm_core.recall_data import RecallDataConfig, build_recall_sequence
    from sepllm_core.training_mask import sepllm_mask

    rng = random.Random(seed)
    data_config = RecallDataConfig(open_values=open_values, min_distance=min_distance)
    attn = getattr(model.config, "_attn_implementation", None) or "sdpa"
    dtype = next(model.parameters()).dtype
    usable = [d for d in docs if d.numel() > seq_len]
    hits = {"full_far": 0, "masked_far": 0, "full_near": 0, "masked_near": 0, "full_far_first": 0,
            "masked_far_first": 0}
    counts = {"far": 0, "near": 0, "far_first": 0}
    kl_far = 0.0
    logp = {"full": 0.0, "masked": 0.0}
    rank_masked = 0.0
    route_total = 0.0
    for _ in range(sequences):
        seq = build_recall_sequence(rng.choice(usable), tokenizer, seq_len, rng, data_config)
        ids = seq.input_ids[None]  # (1, L)
        mask = to_attention_mask(sepllm_mask(ids, table, initial=initial, local=local), attn, dtype)
        with torch.no_grad():
            full = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0].float(), -1)  # (L, V)
            if cache_config is None:
                masked = torch.log_softmax(
                    model(input_ids=ids, attention_mask=mask, use_cache=False).logits[0].float(), -1)
            else:
                masked = _streamed_logprobs(model, ids, table, cache_config)
        if route:
            from sepllm_core.adapt import route_loss

            far_routes = seq.routes()  # (L,)
            for index in (far_routes >= 0).nonzero().flatten().tolist():
                if index - seq.fact_starts[seq.fact_separators.index(int(far_routes[index]))] <= local:
                    far_routes[index] = -1  # near answers do not need the route
            if bool((far_routes >= 0).any()):
                implementation = model.config._attn_implementation
                model.set_attn_implementation("eager")
                eager_mask = to_attention_mask(sepllm_mask(ids, table, initial=initial, local=local), "eager", dtype)
                with torch.no_grad():
                    attentions = model(input_ids=ids, attention_mask=eager_mask, use_cache=False,
                                       output_attentions=True).attentions
                model.set_attn_implementation(implementation)
                count = int((far_routes >= 0).sum())
                route_total += float(route_loss(attentions, far_routes[None])[1]) * count
                del attentions
        answers = seq.answer_mask.nonzero().flatten().tolist()
        fact_of = {}
        spans = [i for i in answers if i - 1 not in answers]  # first token of each answer, in asked order
        for first, fact_index in zip(spans, seq.asked, strict=True):
            fact_of[first] = seq.fact_starts[fact_index]
        current = None
        for index in answers:
            current = fact_of.get(index, current)
            far = "far" if index - current > local else "near"
            counts[far] += 1
            target = int(seq.input_ids[index])
            hits[f"full_{far}"] += int(full[index - 1].argmax()) == target
            hits[f"masked_{far}"] += int(masked[index - 1].argmax()) == target
            if far == "far":
                kl_far += float((full[index - 1].exp() * (full[index - 1] - masked[index - 1])).sum())
                if index in fact_of:  # the first value token: the one that needs the fact
                    counts["far_first"] += 1
                    hits["full_far_first"] += int(full[index - 1].argmax()) == target
                    hits["masked_far_first"] += int(masked[index - 1].argmax()) == target
                    logp["full"] += float(full[index - 1, target])
                    logp["masked"] += float(masked[index - 1, target])
                    rank_masked += 1 + int((masked[index - 1] > masked[index - 1, target]).sum())
    result: dict[str, float] = {f"{k}_tokens": float(v) for k, v in counts.items()}
    for key, value in hits.items():
        result[f"{key}_top1"] = value / max(counts[key.split("_", 1)[1]], 1)
    result["kl_far"] = kl_far / max(counts["far"], 1)
    for which, total in logp.items():
        result[f"{which}_far_first_logp"] = total / max(counts["far_first"], 1)
    result["masked_far_first_rank"] = rank_masked / max(counts["far_first"], 1)
    if route:
        result["masked_far_first_route"] = route_total / max(counts["far_first"], 1)
    return result


def separator_readout(model: Any, tokenizer: Any, docs: Sequence[torch.Tensor], table: torch.Tensor, *,
                      seq_len: int = 512, local: int = 128, initial: int = 4, sequences: int = 60,
                      seed: int = 54321, ridge: float = 0.1) -> dict[str, Any]:
    """Does a fact's separator carry its value? A linear readout per layer, against a control position.

    On held-out ``recall_data`` sequences run under the SepLLM mask, a ridge map is fitted (first
    75 % of the sequences) from the hidden state at each fact's ``.`` separator to the input
    embedding of the value's first token; on the rest, the readout counts as right when the true
    first token is the nearest (cosine) among the first tokens of every value of that kind seen in
    the data. The control is the token just before the value (``... is painted``), which can tell the
    kind but not the value, so it should sit near chance.

    Returns
    -------
    dict
        ``separator`` and ``control``: accuracy per hidden-state layer (0 = embeddings);
        ``chance``: mean 1 / candidates; ``train`` / ``test``: fact counts.
    """
    import random

    from sepllm_core.recall_data import build_recall_sequence
    from sepllm_core.training_mask import sepllm_mask

    rng = random.Random(seed)
    attn = getattr(model.config, "_attn_implementation", None) or "sdpa"
    dtype = next(model.parameters()).dtype
    usable = [d for d in docs if d.numel() > seq_len]
    embeddings = model.get_input_embeddings().weight.detach().float()  # (V, D)
    separator_states: list[torch.Tensor] = []  # per fact: (layers + 1, D)
    control_states: list[torch.Tensor] = []
    firsts: list[int] = []
    kinds: list[str] = []
    split_at = 0
    for number in range(sequences):
        seq = build_recall_sequence(rng.choice(usable), tokenizer, seq_len, rng)
        ids = seq.input_ids[None]  # (1, L)
        mask = to_attention_mask(sepllm_mask(ids, table, initial=initial, local=local), attn, dtype)
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True
                           ).hidden_states  # layers + 1 of (1, L, D)
        states = torch.stack([h[0].float() for h in hidden])  # (layers + 1, L, D)
        for fact, separator in zip(seq.facts, seq.fact_separators, strict=True):
            value_ids = tokenizer(" " + fact.value + ".", add_special_tokens=False)["input_ids"]
            value_start = separator - (len(value_ids) - 1)  # the value's first token in the fact sentence
            separator_states.append(states[:, separator])
            control_states.append(states[:, value_start - 1])
            firsts.append(int(seq.input_ids[value_start]))
            kinds.append(fact.kind)
        if number + 1 == int(0.75 * sequences):
            split_at = len(firsts)
    candidates = {kind: sorted({f for f, k in zip(firsts, kinds, strict=True) if k == kind}) for kind in set(kinds)}
    targets = embeddings[torch.tensor(firsts)]  # (N, D)

    def accuracy(states: list[torch.Tensor], layer: int) -> float:
        x = torch.stack([s[layer] for s in states])  # (N, D)
        mean, std = x[:split_at].mean(0), x[:split_at].std(0) + 1e-6
        x = (x - mean) / std
        train_x, test_x = x[:split_at], x[split_at:]
        gram = train_x.T @ train_x  # (D, D)
        penalty = ridge * float(gram.trace()) / gram.shape[0] + 1e-3  # the floor: a constant state has no variance
        weights = torch.linalg.solve(gram + penalty * torch.eye(gram.shape[0]), train_x.T @ targets[:split_at])
        predicted = torch.nn.functional.normalize(test_x @ weights, dim=-1)  # (n, D)
        right = 0
        for row, index in enumerate(range(split_at, len(firsts))):
            options = candidates[kinds[index]]
            scores = predicted[row] @ torch.nn.functional.normalize(embeddings[options], dim=-1).T
            right += options[int(scores.argmax())] == firsts[index]
        return right / max(len(firsts) - split_at, 1)

    layers = separator_states[0].shape[0]
    return {"separator": [accuracy(separator_states, layer) for layer in range(layers)],
            "control": [accuracy(control_states, layer) for layer in range(layers)],
            "chance": sum(1 / len(candidates[k]) for k in kinds[split_at:]) / max(len(kinds) - split_at, 1),
            "train": split_at, "test": len(firsts) - split_at}


def by_depth(facts: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Top-1 share and mean rank per planted depth ("0.05" ... "0.95")."""
    groups: dict[str, list[int]] = {}
    for fact in facts:
        groups.setdefault(f"{fact['depth']:.2f}", []).append(int(fact["rank"]))
    return {depth: {"top1": sum(r == 1 for r in ranks) / len(ranks), "mean_rank": sum(ranks) / len(ranks)}
            for depth, ranks in sorted(groups.items())}


def evaluate(model: Any, tokenizer: Any, heldout: Sequence[torch.Tensor], table: torch.Tensor, *,
             budget: int, recall_tokens: int, seeds: Sequence[int], window_len: int, max_windows: int,
             separators: int | None = None, local: int | None = None, fill_recent: bool = True,
             open_values: bool = False, policies: Sequence[str] = POLICIES,
             perplexity: bool = True, positions: str = "auto", ppl_chunk: int = 64) -> dict[str, Any]:
    """Perplexity at equal budget (unless ``perplexity`` is False) and recall on the held-out token streams.

    ``positions``: the caches' position mode (``CacheConfig.positions``). Perplexity is mask-emulated
    (original positions) unless it is ``shifted``; then it is streamed in chunks of ``ppl_chunk``.
    """
    started = time.perf_counter()
    result: dict[str, Any] = {"budget": budget, "sepllm_separators": separators, "sepllm_local": local,
                              "sepllm_fill_recent": fill_recent, "open_values": open_values,
                              "positions": positions}
    if perplexity and positions == "shifted":
        result["perplexity_streamed_chunk"] = ppl_chunk
        result["perplexity"] = streamed_perplexity(model, heldout, table, budget=budget, window_len=window_len,
                                                   max_windows=max_windows, separators=separators, local=local,
                                                   fill_recent=fill_recent, policies=policies,
                                                   positions=positions, chunk_size=ppl_chunk)
    elif perplexity:
        result["perplexity"] = budget_perplexity(model, heldout, table, budget=budget, window_len=window_len,
                                                 max_windows=max_windows, separators=separators, local=local,
                                                 fill_recent=fill_recent, policies=policies)
    longest = max(heldout, key=lambda t: t.numel())
    if recall_tokens > 0:
        text = tokenizer.decode(longest.tolist())
        result["recall"] = recall_by_policy(model, tokenizer, text, table, budget=budget, tokens=recall_tokens,
                                            seeds=seeds, separators=separators, local=local,
                                            fill_recent=fill_recent, open_values=open_values, policies=policies,
                                            positions=positions)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def write_curve(history: Sequence[dict[str, float]], out_dir: Path) -> Path:
    """Training curve: ``curve.png`` when matplotlib is installed, else ``curve.csv``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = out_dir / "curve.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", "kl", "answer_kl", "loss", "lr"],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)
        return path
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(steps, [h["kl"] for h in history], lw=0.8, alpha=0.5, label="KL per step")
    smooth = max(1, len(history) // 25)
    averaged = [sum(h["kl"] for h in history[max(0, i - smooth + 1) : i + 1]) / min(i + 1, smooth)
                for i in range(len(history))]
    ax.plot(steps, averaged, lw=1.6, label=f"mean of {smooth}")
    answered = [h for h in history if h.get("answer_kl") is not None and not math.isnan(h["answer_kl"])]
    if answered:
        smooth_answers = max(1, len(answered) // 25)
        ax.plot([h["step"] for h in answered],
                [sum(a["answer_kl"] for a in answered[max(0, i - smooth_answers + 1) : i + 1])
                 / min(i + 1, smooth_answers) for i in range(len(answered))],
                lw=1.6, label=f"KL on answer tokens (mean of {smooth_answers})")
    ax.set_xlabel("step")
    ax.set_ylabel("KL(full || SepLLM mask)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("SepLLM self-distillation")
    fig.tight_layout()
    path = out_dir / "curve.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from app.engine.models import load_model
    from sepllm_core.adapt import load_adapted

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(".cache/sepsum-home/models/smollm2-135m-instruct"))
    parser.add_argument("--adapter", type=Path, default=None,
                        help="folder written by 'sepsum adapt' (needed unless --phase before)")
    parser.add_argument("--text", nargs="+", required=True, help="the texts the adapter was trained on")
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=6144, help="recall document length (0: skip recall)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--window-len", type=int, default=4096)
    parser.add_argument("--max-windows", type=int, default=8)
    parser.add_argument("--separators", default=None, help="separator set (default: the adapter's)")
    parser.add_argument("--sep-keep", type=int, default=None,
                        help="separators the SepLLM cache keeps (default budget/4); the rest is newest tokens")
    parser.add_argument("--local", type=int, default=None, help="newest tokens SepLLM always keeps (default budget/4)")
    parser.add_argument("--no-fill", action="store_true",
                        help="SepLLM keeps exactly --local newest tokens (CacheConfig.fill_recent=False) instead of "
                             "filling the budget with the newest tokens")
    parser.add_argument("--open-values", action="store_true",
                        help="recall with made-up values (sepllm_core.recall open_values) instead of the closed lists")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help=f"comma-separated caches to measure (default {','.join(POLICIES)})")
    parser.add_argument("--recall-only", action="store_true", help="skip the perplexity at equal budget")
    parser.add_argument("--positions", choices=("auto", "original", "shifted"), default="auto",
                        help="the caches' position mode (default auto: original inside the model's context); "
                             "shifted renumbers kept entries contiguously and streams the perplexity")
    parser.add_argument("--ppl-chunk", type=int, default=64,
                        help="chunk of the streamed perplexity (with --positions shifted; default 64)")
    parser.add_argument("--phase", choices=("both", "before", "after"), default="both",
                        help="evaluate the base model, the adapted one, or both (a phase merges into --out)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--probe", type=int, default=0, metavar="N",
                        help="only run the answer probe on N held-out recall_data sequences (base, then adapter)")
    parser.add_argument("--probe-local", type=int, default=128, help="local window of the probe's SepLLM mask")
    parser.add_argument("--probe-len", type=int, default=1024, help="tokens per probe sequence (default 1024)")
    parser.add_argument("--probe-cache", action="store_true",
                        help="score the probe's masked side through the SepLLM cache (--budget, --sep-keep, --local) "
                             "streamed in chunks, instead of the training mask")
    parser.add_argument("--probe-min-distance", type=int, default=0, metavar="N",
                        help="probe facts end at least N tokens before the questions (default 0: anywhere)")
    parser.add_argument("--probe-skip-base", action="store_true", help="probe only the adapted model")
    parser.add_argument("--probe-route", action="store_true",
                        help="also measure the attention the first value token pays to its fact's separator")
    parser.add_argument("--probe-open-values", action="store_true",
                        help="probe with made-up values (names, numbers, codes) instead of the closed lists")
    parser.add_argument("--readout", type=int, default=0, metavar="N",
                        help="only fit the separator readout on N held-out recall_data sequences (base or adapter)")
    parser.add_argument("--out", type=Path, default=Path("adapt_eval.json"))
    args = parser.parse_args(argv)

    if args.phase != "before" and args.adapter is None:
        parser.error("--adapter is needed unless --phase before")
    if args.threads:
        torch.set_num_threads(args.threads)
    meta_path = args.adapter / "sepllm_adapt.json" if args.adapter else None
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path and meta_path.is_file() else {}
    which = args.separators or meta.get("config", {}).get("separators", "default")
    loaded = load_model(str(args.model), device="cpu", dtype="bf16")  # unpacked: the masked forwards need it
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    _, heldout = split_tokens(read_texts(args.text), tokenizer, args.holdout)
    table = separator_lookup(tokenizer, which)
    options = dict(budget=args.budget, recall_tokens=args.tokens, seeds=[int(s) for s in args.seeds.split(",")],
                   window_len=args.window_len, max_windows=args.max_windows, separators=args.sep_keep,
                   local=args.local, fill_recent=not args.no_fill, open_values=args.open_values,
                   policies=_policies(args.policies, parser), perplexity=not args.recall_only,
                   positions=args.positions, ppl_chunk=args.ppl_chunk)
    if args.readout:
        if args.adapter is not None:
            model = load_adapted(model, args.adapter, merge=True)
        readout = separator_readout(model, tokenizer, heldout, table, sequences=args.readout, local=args.probe_local)
        print(json.dumps(readout, indent=2))
        return 0
    if args.probe:
        from sepllm_core.recall import cache_config_for

        probe_cache = cache_config_for("sepllm", args.budget, separators=args.sep_keep, local=args.local,
                                       fill_recent=not args.no_fill) if args.probe_cache else None
        probe = {} if args.probe_skip_base and args.adapter is not None else {
            "base": answer_probe(model, tokenizer, heldout, table, sequences=args.probe, local=args.probe_local,
                                 route=args.probe_route, open_values=args.probe_open_values,
                                 seq_len=args.probe_len, min_distance=args.probe_min_distance,
                                 cache_config=probe_cache)}
        if args.adapter is not None:
            model = load_adapted(model, args.adapter, merge=True)
            probe["adapted"] = answer_probe(model, tokenizer, heldout, table, sequences=args.probe,
                                            local=args.probe_local, route=args.probe_route,
                                            open_values=args.probe_open_values, seq_len=args.probe_len,
                                            min_distance=args.probe_min_distance, cache_config=probe_cache)
        print(json.dumps(probe, indent=2))
        return 0
    report: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    report.update({"separators": which, "adapter": str(args.adapter), "options": options})
    if args.phase in ("both", "before"):
        report["before"] = evaluate(model, tokenizer, heldout, table, **options)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.phase in ("both", "after"):
        model = load_adapted(model, args.adapter, merge=True)
        report["after"] = evaluate(model, tokenizer, heldout, table, **options)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        with open(args.adapter / "history.csv", encoding="utf-8") as handle:
            history = list(csv.DictReader(handle))
        report["curve"] = str(write_curve([{k: float(v) for k, v in h.items() if v not in ("", None)}
                                           for h in history], args.out.parent))
    print(json.dumps({phase: report[phase].get("perplexity") or {
        policy: recall["recall_early_count"] for policy, recall in report[phase].get("recall", {}).items()}
        for phase in ("before", "after") if phase in report}, indent=2))
    return 0


def _policies(text: str, parser: argparse.ArgumentParser) -> tuple[str, ...]:
    policies = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        parser.error(f"--policies takes some of {', '.join(POLICIES)}, got {text!r}")
    return policies


if __name__ == "__main__":
    raise SystemExit(main())
