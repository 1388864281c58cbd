"""Session: chunked prefill and a hand-written decode loop over a compressed cache, yielding events.

``model.generate`` is not used: on a cache that shrinks between forwards it slices the input to
nothing (../shared/STACK.md), and a plain loop lets us cancel and report per token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from sepllm_core.cache import SepCache, build_cache
from sepllm_core.config import CacheConfig
from sepllm_core.encoding import encode_long
from sepllm_core.events import Done, Event, MemorySample, Progress, Token
from sepllm_core.fast_decode import FastDecode
from sepllm_core.positions import find_rotary_module
from sepllm_core.separators import cached_separator_table
from sepllm_core.stream import forward_chunk, stream_chunks
from sepllm_core.threads import MIN_TOKENS_TO_TUNE, DecodeThreads

END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
               "<|im_start|>", "<|start_header_id|>", "<start_of_turn>")
"""Chat-template tokens that end the answer when the vocabulary has them: the ends of a turn, and
the starts of a new one (a small model that opens a "user" turn mid-summary has finished it)."""

@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen.

    Parameters
    ----------
    temperature : float
        0 (default) is greedy; otherwise softmax temperature.
    top_p : float
        Nucleus sampling mass in (0, 1].
    repetition_penalty : float
        >1 discourages tokens already generated in this call (the CTRL rule: positive logits
        divided, negative multiplied).
    seed : int, optional
        Seed for a private random generator (reproducible sampling).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        """True when no sampling happens."""
        return self.temperature == 0


def choose_token(logits: torch.Tensor, sampling: SamplingConfig, previous: Sequence[int],
                 generator: torch.Generator | None = None) -> int:
    """Pick the next token id from ``logits`` (shape ``[vocab]``, fp32)."""
    if sampling.repetition_penalty != 1.0 and previous:
        seen = torch.tensor(sorted(set(previous)), dtype=torch.long, device=logits.device)
        values = logits[seen]
        logits = logits.clone()
        logits[seen] = torch.where(values > 0, values / sampling.repetition_penalty,
                                   values * sampling.repetition_penalty)
    if sampling.greedy:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        drop = cumulative - sorted_probs > sampling.top_p  # keep the first token past the mass
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


def repetition_loop(ids: Sequence[int], min_span: int = 48, max_period: int = 64, min_repeats: int = 3) -> bool:
    """Whether ``ids`` ends in a block repeated back to back (period <= ``max_period``).

    The repeated tail must cover at least ``min_span`` tokens and ``min_repeats`` periods, so an
    ordinary list or a repeated phrase does not trigger it.
    """
    n = len(ids)
    for period in range(1, max_period + 1):
        span = max(min_span, min_repeats * period)
        span = -(-span // period) * period  # round up to whole periods
        if span > n:
            break
        tail = ids[n - span:]
        if tail[period:] == tail[:-period]:
            return True
    return False


class StreamDecoder:
    """Incremental detokenizer: returns only complete text, holding back partial UTF-8."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def push(self, token_id: int) -> str:
        """Add a token; return the newly completed text (may be empty)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is left undecoded (replacement characters included)."""
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        self._prefix = self._read = len(self.ids)
        return after[len(before):]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                   getattr(tokenizer, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(i) for i in source)
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    ids.update(vocab[m] for m in END_MARKERS if m in vocab)
    return ids


@contextmanager
def _restore_threads(count: int) -> Iterator[None]:
    """Set the intra-op thread count back to ``count`` on the way out (decode may change it)."""
    try:
        yield
    finally:
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)


class Session:
    """One conversation with a model over a compressed cache: feed text, then generate.

    Parameters
    ----------
    model : transformers PreTrainedModel
        A causal LM (eval mode).
    tokenizer : transformers tokenizer
    cache_config : CacheConfig
        Policy and budgets (:meth:`CacheConfig.balanced` if omitted).
    cancel : threading.Event, optional
        When set, ``feed`` and ``generate`` stop within one chunk or one token and yield
        ``Done(stopped_by="cancelled")``.
    separators : torch.BoolTensor, optional
        Separator table; computed from the tokenizer (once per tokenizer) when omitted.
    fast_decode : bool
        Decode steps use :class:`sepllm_core.fast_decode.FastDecode` (single-token attention as
        two grouped matmuls on CPU) where the model supports it; False keeps the model's own
        attention for every forward.
    decode_threads : int, optional
        CPU threads for decode steps. By default (None) each generation of at least
        :data:`~sepllm_core.threads.MIN_TOKENS_TO_TUNE` tokens on CPU times its first steps with
        the current thread count, half of it and one, and decodes the rest with the fastest
        (:class:`~sepllm_core.threads.DecodeThreads`); prefill keeps the current count, which is
        restored after each generation.

    Notes
    -----
    Everything runs under ``torch.inference_mode``. ``feed`` yields Progress and MemorySample
    events (and a Done only when cancelled); ``generate`` yields Token events and ends with Done.
    """

    memory_every = 16  # decode steps between MemorySample/Progress events

    def __init__(self, model: Any, tokenizer: Any, cache_config: CacheConfig | None = None,
                 cancel: threading.Event | None = None, separators: torch.Tensor | None = None,
                 fast_decode: bool = True, decode_threads: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.cache_config = cache_config or CacheConfig.balanced()
        self.cancel = cancel or threading.Event()
        if separators is None and self.cache_config.policy == "sepllm":
            separators = cached_separator_table(tokenizer)
        self.device = next(model.parameters()).device
        self.cache: SepCache = build_cache(model.config, self.cache_config, separators,
                                           rotary=find_rotary_module(model))
        self.eos_ids = _eos_ids(model, tokenizer)
        self.fast = FastDecode(model, enabled=fast_decode)
        self.decode_threads = decode_threads
        self._threads: DecodeThreads | None = None  # the last generation's plan
        self._tuned_threads: int | None = None  # its choice, once a generation was long enough to time
        self.cancelled = False
        self._last_logits: torch.Tensor | None = None
        self._started = time.perf_counter()
        self._input_tokens = 0
        self._output_tokens = 0
        self._prefill_s = 0.0
        self._decode_s = 0.0
        self._decode_tokens = 0

    # -- low level ---------------------------------------------------------------------------

    def step(self, token_id: int, protect: bool = False) -> torch.Tensor:
        """Read one token through the decode path (as :meth:`generate` does after choosing it).

        Returns the next-token logits ``[vocab]`` (fp32); teacher-forced decoding calls this
        directly. :class:`FastDecode` serves the step where the model supports it.
        """
        logits = forward_chunk(self.model, self.cache, torch.tensor([[token_id]]), protected=protect,
                               fast=self.fast, device=self.device)[-1]
        self._last_logits = logits
        return logits

    def _memory_sample(self) -> MemorySample:
        s = self.cache.stats()
        return MemorySample(tokens_seen=s.tokens_seen, kv_entries=s.kv_entries, kv_bytes=s.kv_bytes,
                            kv_bytes_full_equivalent=s.kv_bytes_full_equivalent,
                            time_s=time.perf_counter() - self._started)

    def _done(self, text: str, stopped_by: str) -> Done:
        return Done(text=text, stats=self.stats(), stopped_by=stopped_by)

    # -- public ------------------------------------------------------------------------------

    def feed(self, ids: Sequence[int] | torch.Tensor, protect: bool = False) -> Iterator[Event]:
        """Read ``ids`` in chunks of ``cache_config.chunk_size``, compressing after each chunk.

        Parameters
        ----------
        ids : list of int or torch.LongTensor, shape ``[n]`` or ``[1, n]``
        protect : bool
            Keep these tokens forever (an instruction header).

        Yields
        ------
        Progress(phase="prefill") and MemorySample after each chunk; Done(stopped_by="cancelled")
        if cancelled (then the session stops: ``self.cancelled`` is True).
        """
        tokens = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        total = tokens.numel()
        done = 0
        start = time.perf_counter()
        with torch.inference_mode():
            t0 = time.perf_counter()
            for chunk in stream_chunks(self.model, self.cache, tokens, self.cache_config.chunk_size,
                                       protected=protect, cancel=self.cancel):
                self._prefill_s += time.perf_counter() - t0
                self._last_logits = chunk.logits[-1]
                done = chunk.end
                self._input_tokens += chunk.ids.numel()
                elapsed = time.perf_counter() - start
                rate = done / elapsed if elapsed > 0 else 0.0
                eta = (total - done) / rate if rate > 0 else None
                yield Progress(phase="prefill", tokens_done=done, tokens_total=total, tokens_per_s=rate, eta_s=eta)
                yield self._memory_sample()
                t0 = time.perf_counter()
            if done < total:  # stream_chunks stopped before a chunk because cancel was set
                self.cancelled = True
                yield self._done("", "cancelled")

    def feed_text(self, text: str, protect: bool = False) -> Iterator[Event]:
        """Tokenize ``text`` (no special tokens added) and :meth:`feed` it."""
        ids = encode_long(self.tokenizer, text)
        yield from self.feed(ids, protect=protect)

    def generate(self, max_new_tokens: int, sampling: SamplingConfig | None = None,
                 stop_strings: Sequence[str] = (), protect_output: bool = False,
                 detect_repetition: bool = True, min_new_tokens: int = 0) -> Iterator[Event]:
        """Decode up to ``max_new_tokens`` tokens after what was fed.

        ``min_new_tokens``: the end-of-text tokens are masked out of the first that many steps
        (as transformers' ``min_new_tokens``); stop strings and the repetition check still apply.

        Yields
        ------
        Token for each token (text may be empty while UTF-8 is partial or a stop string may be
        starting), Progress(phase="decode") and MemorySample every ``memory_every`` tokens, then
        Done(text, stats, stopped_by) with stopped_by in "eos", "stop_string", "max_tokens",
        "repetition", "cancelled". The stop string itself is not part of the text.
        """
        if self._last_logits is None:
            raise ValueError("generate() needs a prompt: call feed() first")
        sampling = sampling or SamplingConfig()
        generator = None
        if sampling.seed is not None:
            generator = torch.Generator().manual_seed(sampling.seed)
        stops = [s for s in stop_strings if s]
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long)
        hold = max((len(s) for s in stops), default=1) - 1
        decoder = StreamDecoder(self.tokenizer)
        text = ""
        emitted = 0
        generated: list[int] = []
        stopped_by = "max_tokens"
        start = time.perf_counter()
        logits = self._last_logits
        threads = self._thread_plan(max_new_tokens)
        prefill_threads = torch.get_num_threads()
        with torch.inference_mode(), _restore_threads(prefill_threads):
            for step in range(max_new_tokens):
                if self.cancel.is_set():
                    self.cancelled = True
                    stopped_by = "cancelled"
                    break
                t0 = time.perf_counter()
                if step < min_new_tokens and eos.numel():
                    logits = logits.index_fill(0, eos.to(logits.device), float("-inf"))
                token = choose_token(logits, sampling, generated, generator)
                if token in self.eos_ids:
                    self._decode_s += time.perf_counter() - t0
                    stopped_by = "eos"
                    break
                generated.append(token)
                text += decoder.push(token)
                cut = min((i for i in (text.find(s, max(0, emitted - hold)) for s in stops) if i >= 0),
                          default=-1)
                if cut >= 0:
                    text = text[:cut]
                    stopped_by = "stop_string"
                    self._decode_s += time.perf_counter() - t0
                    self._output_tokens += 1
                    break
                count = threads.threads_for(step)
                if count != torch.get_num_threads():
                    torch.set_num_threads(count)
                t1 = time.perf_counter()
                logits = self.step(token, protect_output)
                threads.record(step, time.perf_counter() - t1)
                self._decode_s += time.perf_counter() - t0
                self._decode_tokens += 1
                self._output_tokens += 1
                safe = len(text) - self._pending_stop_prefix(text, stops, emitted)
                yield Token(text=text[emitted:safe], token_id=token)
                emitted = safe
                if detect_repetition and step % 8 == 7 and repetition_loop(generated):
                    stopped_by = "repetition"
                    break
                if step % self.memory_every == self.memory_every - 1:
                    elapsed = time.perf_counter() - start
                    yield Progress(phase="decode", tokens_done=step + 1, tokens_total=max_new_tokens,
                                   tokens_per_s=(step + 1) / elapsed if elapsed > 0 else 0.0)
                    yield self._memory_sample()
        if threads.tuned:
            self._tuned_threads = threads.choice
        if stopped_by not in ("stop_string",):
            text += decoder.flush()
        if len(text) > emitted:
            yield Token(text=text[emitted:], token_id=generated[-1] if generated else -1)
        yield self._memory_sample()
        yield self._done(text, stopped_by)

    def _thread_plan(self, max_new_tokens: int) -> DecodeThreads:
        """This generation's decode thread counts (see the ``decode_threads`` parameter)."""
        current = torch.get_num_threads()
        if self.device.type != "cpu":
            plan = DecodeThreads(current, fixed=current)
        elif self.decode_threads is not None:
            plan = DecodeThreads(current, fixed=self.decode_threads)
        elif max_new_tokens < MIN_TOKENS_TO_TUNE and self._tuned_threads is not None:
            plan = DecodeThreads(current, fixed=self._tuned_threads)
        else:
            plan = DecodeThreads(current, tune=max_new_tokens >= MIN_TOKENS_TO_TUNE)
        self._threads = plan
        return plan

    @staticmethod
    def _pending_stop_prefix(text: str, stops: Sequence[str], emitted: int) -> int:
        """Length of the longest tail of ``text`` (after ``emitted``) that starts some stop string."""
        best = 0
        for stop in stops:
            for k in range(min(len(stop) - 1, len(text) - emitted), 0, -1):
                if stop.startswith(text[-k:]):
                    best = max(best, k)
                    break
        return best

    def stats(self) -> dict[str, Any]:
        """Running totals: tokens, KV bytes (peak and full-cache equivalent), speeds, seconds."""
        s = self.cache.stats()
        return {
            "input_tokens": self._input_tokens,
            "output_tokens": self._output_tokens,
            "tokens_seen": s.tokens_seen,
            "kv_entries": s.kv_entries,
            "kv_entries_peak": s.kv_entries_peak,
            "kv_bytes": s.kv_bytes,
            "kv_bytes_peak": s.kv_bytes_peak,
            "kv_bytes_full_equivalent": s.kv_bytes_full_equivalent,
            "kv_bytes_allocated": s.kv_bytes_allocated,
            "prefill_tokens_per_s": self._input_tokens / self._prefill_s if self._prefill_s > 0 else 0.0,
            "decode_tokens_per_s": self._decode_tokens / self._decode_s if self._decode_s > 0 else 0.0,
            "seconds": self._prefill_s + self._decode_s,
            "wall_seconds": time.perf_counter() - self._started,
            "decode_path": self.fast.describe(),
            "decode_threads": self._threads.choice if self._threads is not None else torch.get_num_threads(),
            "policy": self.cache_config.policy,
            "positions": self.cache.positions_mode,
        }
