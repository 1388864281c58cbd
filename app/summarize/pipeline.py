"""The summarization pipeline: documents in, events out (one pipeline for the CLI and the GUI).

``summarize(request, cancel)`` loads the model once, then reads and summarizes each path,
yielding :mod:`app.summarize.events`. A document that fails yields :class:`Failed` and the
batch goes on; a model that cannot load raises its typed error (ModelError, ResourceError).
After a cancel the current document ends with ``SummaryDone(incomplete=True)`` and the
batch stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import Cancelled, DocumentError, ResourceError, SepSumError
from app.ingest.source_map import SourceMap
from app.request import cache_config as request_cache_config
from app.request import estimate_for_request
from app.summarize import evidence, prompts
from app.summarize.events import (
    DocumentLoaded,
    Failed,
    Notice,
    PipelineEvent,
    Stage,
    SummaryDone,
    SummaryRequest,
)
from app.summarize.fallback import fallback_summary, lead_passages
from app.summarize.map_reduce import map_reduce
from app.summarize.modes import ModeContext, single_pass, truncate
from app.summarize.outline import outline_for
from app.summarize.passages import passages_mode
from app.summarize.quality import MIN_WORDS, check_summary
from app.summarize.quality import describe as describe_flags
from app.summarize.quality import reason as flag_reason
from app.summarize.rolling_notes import rolling_notes
from app.summarize.runner import FIRST_TRY, RETRY, Decoding, DocumentRun, Generated
from sepllm_core.encoding import encode_long

log = logging.getLogger(__name__)

MODES = {"single": single_pass, "notes": rolling_notes, "mapreduce": map_reduce, "truncate": truncate,
         "passages": passages_mode}
EXTRACTIVE_MODES: set[str] = {"passages"}  # modes whose summary is the document's own sentences (copies allowed)
_DEFAULT_NAMES = ("smollm2-135m-instruct", "smollm2-135m-instruct-sepllm")


def choose_mode(requested: str, document_tokens: int, cache_config, context_tokens: int = 8192) -> str:
    """``auto`` is the ``passages`` mode at every length: the document's own sentences, chosen by the
    summary instruction's attention, scored higher ROUGE-L than every mode the default model writes
    and than lead and TextRank at the same length, on the TUNE half of long_doc_dev and dialogue_dev,
    within and beyond the trained context (docs/benchmarks/summary_quality.md), and it cannot invent.
    On the REPORT half it still beats every written mode; against lead it wins on long documents
    (+12 %), is level beyond the context (+3 %) and loses on dialogues (-4 %): docs/BENCHMARKS.md section 3.
    ``document_tokens``, ``cache_config`` and ``context_tokens`` are kept for rules that depend on them.
    """
    if requested != "auto":
        return requested
    return "passages"




def cache_for_model(cache_config, loaded):
    """A SepLLM-adapted model reads its separators at the positions it was trained with (renumbered
    inside the cache, docs/BENCHMARKS.md section 4), unless the cache asks for a mode explicitly."""
    wanted = getattr(loaded, "positions", "")
    if wanted and cache_config.bounded and cache_config.positions == "auto":
        return cache_config.with_(positions=wanted)
    return cache_config


def load_model_for(request: SummaryRequest):
    """Check the memory estimate, then load the model once for the whole batch."""
    from app.engine.estimate import check_fits
    from app.engine.models import load_model

    check_fits(estimate_for_request(request))
    return load_model(request.model, device=request.device, quant=request.quant, dtype="auto", pack=True,
                      decode_weights=request.decode_weights)


def summarize(request: SummaryRequest, cancel: threading.Event, loaded=None) -> Iterator[PipelineEvent]:
    """Summarize every path of ``request``; ``loaded`` reuses an already loaded model.

    The model is loaded (after the memory check) when the first document has been read, so a
    batch of unreadable files never loads it.
    """
    cache_config = request_cache_config(request)  # SettingsError before any document is read
    for path in request.paths:
        if cancel.is_set():
            return
        try:
            from app.ingest.detect import load_document

            yield Stage("reading", Path(path).name)
            document = load_document(Path(path), password=request.password)
            source_map = SourceMap.from_document(document)
            text = source_map.text  # exactly document.text_for_model(), with its units
        except SepSumError as exc:
            yield Failed(str(path), str(exc), type(exc).__name__, exc.exit_code)
            continue
        if loaded is None:  # loaded once, when the first document is ready
            yield Stage("loading model", request.model or "default model")
            loaded = load_model_for(request)
        outcome = yield from summarize_text(
            text, loaded, request, cancel, cache_config=cache_config, path=str(path),
            document_kind=document.kind, title=document.title, metadata=document.metadata,
            warnings=tuple(document.warnings), source_map=source_map)
        if outcome == "cancelled":
            return


def summarize_text(text: str, loaded, request: SummaryRequest, cancel: threading.Event, *,
                   cache_config=None, path: str = "", document_kind: str = "text", title: str = "",
                   genre: str | None = None, metadata: dict[str, Any] | None = None,
                   warnings: tuple[str, ...] = (), source_map: SourceMap | None = None
                   ) -> Iterator[PipelineEvent]:
    """Summarize one text with an already loaded model; returns "done", "failed" or "cancelled".

    ``source_map`` (built from the Document) lets evidence cite pages and messages; without it the
    text's paragraphs are the units."""
    source_map = source_map if source_map is not None and source_map.text == text else SourceMap.from_text(text)
    cache_config = cache_for_model(cache_config or request_cache_config(request), loaded)
    tokenizer = loaded.tokenizer
    kind = request.kind if request.kind != "auto" else prompts.detect_kind(document_kind, text, genre)
    document_ids = encode_long(tokenizer, text)  # in pieces: one call on a book held ~150 MB more
    name = path or title or "the text"
    if not text.strip() or not document_ids:
        error = DocumentError(f"{name} has no text to summarize: check that it is not empty or scanned")
        yield Failed(path, str(error), type(error).__name__, error.exit_code)
        return "failed"
    yield DocumentLoaded(path, document_kind, title, len(document_ids), metadata or {}, warnings)
    language = summary_language_for(request, loaded, text, metadata)
    mode = choose_mode(request.mode, len(document_ids), cache_config, _context_tokens(loaded.model))
    if language.notice and mode not in EXTRACTIVE_MODES:  # passages are in the document's language anyway
        yield Notice(path, language.notice)
    ctx = ModeContext(tokenizer=tokenizer, frame=prompts.chat_frame(tokenizer), kind=kind,
                      length=request.length, style=request.style,
                      language=prompts.language_name(language.code) or language.code,
                      focus=request.focus, document_ids=document_ids,
                      context_tokens=_context_tokens(loaded.model), notes_every=request.notes_every,
                      token_limit=request.max_new_tokens, text=text,
                      document_language=(metadata or {}).get("language"), source_map=source_map)
    framing = ctx.summary_framing()
    prompt_tokens = len(ctx.encode(framing.header)) + len(ctx.encode(framing.footer))
    try:
        check_full_cache_fits(loaded, cache_config, mode, len(document_ids) + prompt_tokens + ctx.max_new_tokens,
                              name)
    except ResourceError as error:
        yield Failed(path, str(error), type(error).__name__, error.exit_code)
        return "failed"
    yield Stage("reading", f"{len(document_ids)} tokens, {mode} mode, {cache_config.policy} cache")
    started = time.perf_counter()
    _reset_gpu_peak()
    generated: Generated | None = None
    run: DocumentRun | None = None
    instructions = prompts.prompt_texts(ctx.frame, kind, ctx.length, ctx.style, ctx.language, ctx.focus)
    quality: dict[str, Any] = {"retries": 0, "fallback": False, "quality_flags": []}
    try:
        attempt_mode, decoding = mode, FIRST_TRY
        for attempt in (1, 2):
            run = DocumentRun(loaded.model, tokenizer, cache_config, cancel, len(document_ids),
                              separators=getattr(loaded, "separator_table", None))
            generated = yield from MODES[attempt_mode](run, ctx, decoding)
            flags = check_summary(generated.text, source_text=text, language=language.code,
                                  prompt_texts=instructions, extractive=attempt_mode in EXTRACTIVE_MODES,
                                  min_words=min(MIN_WORDS, ctx.max_new_tokens // 3))
            quality["quality_flags"] += [{"attempt": attempt, "mode": attempt_mode, "kind": flag.kind,
                                          "detail": flag.detail} for flag in flags]
            if not flags:
                break
            log.info("%s: summary flagged (%s)", name, "; ".join(f"{f.kind}: {f.detail}" for f in flags))
            # beyond the trained context a retry reads the whole document again: go to the passages instead
            if attempt == 2 or len(document_ids) > ctx.context_tokens or attempt_mode in EXTRACTIVE_MODES:
                notice = describe_flags(flags)
                yield Stage("fallback", notice)
                quality["fallback"] = True
                quality["fallback_reason"] = notice
                if attempt_mode not in EXTRACTIVE_MODES:  # read again to let the model choose passages
                    run = DocumentRun(loaded.model, tokenizer, cache_config, cancel, len(document_ids),
                                      separators=getattr(loaded, "separator_table", None))
                    yield from MODES["passages"](run, ctx, FIRST_TRY)
                passages = [p.text for p in run.key_passages] or lead_passages(text, language.code)
                generated = Generated(fallback_summary(notice, passages), generated.tokens, generated.stopped_by)
                break
            quality["retries"] += 1
            attempt_mode, decoding = retry_strategy(attempt_mode)
            yield Stage("retrying", f"the summary {flag_reason(flags)}: trying once more ({attempt_mode} mode, "
                                    "other decoding settings)")
    except Cancelled:
        partial = run.streamed_text if run else ""
        stats = build_stats(run, loaded, cache_config, mode, kind, started, None, quality["retries"] > 0,
                            prompt_tokens)
        stats.update(quality)
        yield SummaryDone(path, partial.strip(), stats, incomplete=True)
        return "cancelled"
    except (RuntimeError, MemoryError) as exc:
        from app.engine.memory import is_out_of_memory

        if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):
            raise
        _empty_gpu_cache()
        error = ResourceError(f"out of memory while summarizing {name} on {loaded.device}: "
                              "choose --quant 4bit, a bounded cache (--cache sepllm) or a smaller model")
        yield Failed(path, str(error), type(error).__name__, error.exit_code)
        return "failed"
    if generated is None or run is None:
        raise RuntimeError("no summary attempt ran")
    stats = build_stats(run, loaded, cache_config, attempt_mode, kind, started, generated,
                        quality["retries"] > 0, prompt_tokens)
    stats.update(quality, language=language.code)
    notice = quality.get("fallback_reason") or ""
    report = evidence.check(generated.text, source_map, language.code,
                            skip=len(notice) if notice and generated.text.startswith(notice) else 0,
                            translated=_translated(language.code, metadata, quality["fallback"] or
                                                   attempt_mode in EXTRACTIVE_MODES),
                            passages=run.key_passages if quality["fallback"] or attempt_mode in EXTRACTIVE_MODES
                            else ())
    stats.update(report.stats())
    outline = outline_for(source_map, report, run.key_passages, language.code)
    yield SummaryDone(path, generated.text, stats, key_passages=tuple(run.key_passages),
                      sentences=tuple(report.sentences), outline=tuple(outline))
    return "done"


def _translated(summary_language: str, metadata: dict[str, Any] | None, extractive: bool) -> bool:
    """The model wrote in another language than the document's (words cannot match for evidence);
    key passages are the document's own words, whatever language was asked."""
    from app.engine.languages import language_code

    document = language_code((metadata or {}).get("language"))
    return not extractive and document not in (None, "und") and document != language_code(summary_language)


def retry_strategy(mode: str) -> tuple[str, Decoding]:
    """The second attempt after a flagged summary: the modes that feed the model several prompts (whose
    text a small model echoes) give way to one pass; a single pass samples instead, with a stronger
    repetition penalty."""
    if mode in ("notes", "mapreduce"):
        return "single", FIRST_TRY
    return mode, RETRY


def summary_language_for(request: SummaryRequest, loaded, text: str, metadata: dict[str, Any] | None):
    """The summary's language (the setting's rule) and the notice to show before the run."""
    from app.engine.languages import choose_summary_language, languages_of_loaded
    from app.ingest.language import guess_language

    document = (metadata or {}).get("language") or guess_language(text)
    label = "The default model" if loaded.name in _DEFAULT_NAMES else f"The model {loaded.name}"
    return choose_summary_language(request.language, document, languages_of_loaded(loaded), label)




def check_full_cache_fits(loaded, cache_config, mode: str, tokens: int, name: str) -> None:
    """Before reading with a full cache, refuse (with numbers) when its KV cannot fit in free memory."""
    if cache_config.bounded or mode not in ("single", "notes"):
        return  # bounded caches were checked before loading; other modes hold a chunk at a time
    from app.engine.estimate import format_bytes, free_bytes

    needed = kv_bytes_per_entry(loaded.model) * tokens
    free = free_bytes(str(loaded.device))
    if needed > free:
        raise ResourceError(f"{name}: a full cache of {tokens:,} tokens needs {format_bytes(needed)}, "
                            f"{format_bytes(free)} free: use --cache sepllm (bounded)")


def build_stats(run: DocumentRun | None, loaded, cache_config, mode: str, kind: str, started: float,
                generated: Generated | None, retried: bool, prompt_tokens: int = 0) -> dict[str, Any]:
    """The ``stats`` object of ``--format json`` (keys listed in issue 2).

    ``kv_bytes_full_equivalent`` is what a full cache holds after one pass over the single-pass
    prompt (``prompt_tokens``), the whole document and the summary, whatever the mode.
    """
    from app.engine.memory import sample_memory

    stats = run.stats if run else None
    memory = sample_memory()
    per_entry = kv_bytes_per_entry(loaded.model)
    document_tokens = stats.document_tokens if stats else 0
    output_tokens = generated.tokens if generated else 0
    full_entries = document_tokens + prompt_tokens + output_tokens
    return {
        "input_tokens": document_tokens,
        "tokens_read": stats.tokens_fed if stats else 0,
        "output_tokens": output_tokens,
        "notes_tokens": stats.notes_tokens if stats else 0,
        "kv_bytes_peak": stats.kv_bytes_peak if stats else 0,
        "kv_bytes_full_equivalent": per_entry * full_entries,
        "kv_entries_peak": stats.kv_entries_peak if stats else 0,
        "prefill_tokens_per_s": round(stats.tokens_fed / stats.prefill_seconds, 1)
        if stats and stats.prefill_seconds else 0.0,
        "decode_tokens_per_s": round(stats.decoded_tokens / stats.decode_seconds, 1)
        if stats and stats.decode_seconds else 0.0,
        "decode_threads": stats.decode_threads if stats else 0,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_bytes": memory["peak_rss_bytes"],
        "peak_gpu_bytes": memory["gpu_peak_bytes"],
        "model": loaded.name,
        "model_variant": getattr(loaded, "variant", "base"),
        "device": str(loaded.device),
        "dtype": _dtype_name(loaded.dtype),
        "quant": loaded.quant,
        "decode_weights": loaded.decode_weights,
        "cache": cache_config.to_dict(),
        "mode": mode,
        "kind": kind,
        "stopped_by": generated.stopped_by if generated else "cancelled",
        "retried": retried,
    }


def kv_bytes_per_entry(model) -> int:
    """Bytes one token's keys and values take over all layers (what a full cache adds per token)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = model.dtype.itemsize if getattr(model.dtype, "is_floating_point", False) else 2
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element


def _context_tokens(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(getattr(config, "max_position_embeddings", None) or 4096)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _reset_gpu_peak() -> None:
    from app.engine.memory import reset_gpu_peak

    reset_gpu_peak()


def _empty_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
