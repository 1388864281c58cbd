"""``sepsum summarize PATH...``: print the pipeline's events (summary on stdout, progress on stderr).

Progress (tokens read of total, tokens/s, ETA, KV cache MB) is drawn on stderr only when it
is a terminal. One failing document does not stop the others; the exit code is that of the
first failure. Ctrl-C stops within a chunk or a token, keeps what was written, exits 130.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from app import settings
from app.request import from_settings
from app.summarize.citations import render_cited, sources_block
from app.summarize.events import (
    DocumentLoaded,
    Failed,
    MemorySample,
    NoteWritten,
    Notice,
    Progress,
    Stage,
    SummaryDone,
    Token,
)

FORMATS = ("text", "markdown", "json")
_SUFFIX = {"text": ".summary.txt", "markdown": ".summary.md", "json": ".summary.json"}
EXIT_CANCELLED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize", help="summarize documents and chat exports",
        description="Summarize PDFs, text/markdown files and chat exports with a compressed KV cache.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="documents to summarize")
    settings.add_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--output", type=Path, metavar="FILE|DIR",
                        help="write the summary to FILE, or one file per document into DIR")
    parser.add_argument("--password", metavar="PW", help="password of encrypted PDFs")
    parser.add_argument("--max-new-tokens", type=int, metavar="N",
                        help="most tokens the summary may have (default: set by --length)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values = settings.from_args(args)
    request = from_settings(args.paths, values, password=args.password, max_new_tokens=args.max_new_tokens)
    cancel = threading.Event()
    printer = Printer(args.format, args.output, several=len(args.paths) > 1)
    with _sigint_sets(cancel):
        from app.summarize.pipeline import summarize

        for event in summarize(request, cancel):
            printer.handle(event)
    printer.close()
    if cancel.is_set():
        print("sepsum: stopped (Ctrl-C); what was written is kept", file=sys.stderr)
        return EXIT_CANCELLED
    return printer.exit_code


class _sigint_sets:
    """Context manager: the first Ctrl-C sets ``cancel``, a second one interrupts at once."""

    def __init__(self, cancel: threading.Event):
        self.cancel = cancel
        self.previous: Any = None

    def __enter__(self) -> _sigint_sets:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt
        self.cancel.set()


class ProgressLine:
    """One self-overwriting status line on a terminal; silent when the stream is not a TTY."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.enabled = stream.isatty()
        self.kv_bytes = 0
        self.shown = False

    def show(self, progress: Progress) -> None:
        if self.enabled:
            self.stream.write("\r\033[K" + describe_progress(progress, self.kv_bytes))
            self.stream.flush()
            self.shown = True

    def stage(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def describe_progress(progress: Progress, kv_bytes: int) -> str:
    """"reading 3,072/12,500 tokens · 1,020 tok/s · ETA 9 s · KV 45.2 MB"."""
    parts = [f"{progress.phase} {progress.tokens_done:,}/{progress.tokens_total:,} tokens",
             f"{progress.tokens_per_s:,.0f} tok/s"]
    if progress.eta_s is not None:
        parts.append(f"ETA {progress.eta_s:,.0f} s")
    if kv_bytes:
        parts.append(f"KV {kv_bytes / 1e6:,.1f} MB")
    return " · ".join(parts)


class Printer:
    """Turns pipeline events into stdout text, output files, stderr lines and an exit code."""

    def __init__(self, fmt: str, output: Path | None, several: bool):
        self.format = fmt
        self.output = output
        self.several = several
        self.exit_code = 0
        self.progress = ProgressLine(sys.stderr)
        self.stdout_is_tty = sys.stdout.isatty()
        self.streaming = fmt != "json" and output is None
        self.document: DocumentLoaded | None = None
        self.started_summary = False
        self.streamed = ""  # the text streamed for the current document (replaced if the final differs)

    def handle(self, event: object) -> None:
        if isinstance(event, DocumentLoaded):
            self.document, self.started_summary, self.streamed = event, False, ""
        elif isinstance(event, Notice):
            self.progress.clear()
            print(f"sepsum: {Path(event.path).name}: {event.text}", file=sys.stderr)
        elif isinstance(event, MemorySample):
            self.progress.kv_bytes = event.kv_bytes
        elif isinstance(event, Progress):
            if event.phase != "writing" or not (self.streaming and self.stdout_is_tty):
                self.progress.show(event)
        elif isinstance(event, Stage):
            if event.name == "retrying" and self.streaming and self.streamed:
                self._unshow_streamed()
            self.progress.stage(f"{event.name}{': ' + event.detail if event.detail else ''}")
        elif isinstance(event, Token) and self.streaming:
            self._start_summary()
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self.streamed += event.text
        elif isinstance(event, NoteWritten):
            pass  # intermediate texts are not part of the summary
        elif isinstance(event, SummaryDone):
            self._done(event)
        elif isinstance(event, Failed):
            self._failed(event)

    def close(self) -> None:
        self.progress.clear()

    def _start_summary(self) -> None:
        if self.started_summary:
            return
        self.progress.clear()
        self.started_summary = True
        path = self.document.path if self.document else ""
        if self.format == "markdown":
            sys.stdout.write(f"## {self._title(path)}\n\n")
        elif self.several:
            sys.stdout.write(f"==> {path} <==\n")

    def _done(self, event: SummaryDone) -> None:
        self.progress.clear()
        if self.streaming:
            if not self.started_summary:  # nothing streamed (e.g. cancelled before writing)
                self._start_summary()
            if not event.incomplete and event.summary.strip() != self.streamed.strip():
                self._replace_streamed(event)
            self._cite_streamed(event)
            sys.stdout.write("\n\n" if self.several else "\n")
            sys.stdout.flush()
            return
        rendered = self._render(event)
        if self.output is None:
            sys.stdout.write(rendered)
            sys.stdout.flush()
        else:
            target = self._target(event.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rendered, encoding="utf-8")

    def _replace_streamed(self, event: SummaryDone) -> None:
        """The final summary differs from what streamed (a retry, or the fallback after garbage): the
        streamed text must not stay as the answer, so it is erased on a terminal, and the final text
        follows it, with a one-line notice on stderr."""
        if self.streamed:
            self._unshow_streamed()
            reason = event.stats.get("fallback_reason") or "a retry"
            print(f"sepsum: {Path(event.path).name}: the streamed text was replaced by the final summary "
                  f"({reason})", file=sys.stderr)
        sys.stdout.write(event.summary)
        sys.stdout.flush()
        self.streamed = event.summary

    def _cite_streamed(self, event: SummaryDone) -> None:
        """Citations for the streamed summary: on a terminal the text is rewritten with them after each
        sentence; elsewhere (a pipe) what streamed stays and a short sources list follows."""
        if event.incomplete or not event.sentences:
            return
        if self.stdout_is_tty:
            self._unshow_streamed()
            sys.stdout.write(render_cited(event.summary, event.sentences))
            self.streamed = event.summary
        else:
            block = sources_block(event.sentences)
            if block:
                sys.stdout.write("\n\n" + block)
        sys.stdout.flush()

    def _unshow_streamed(self) -> None:
        """Erase the streamed text on a terminal; elsewhere end its line (the final text comes after)."""
        if self.stdout_is_tty:
            columns = max(shutil.get_terminal_size().columns, 1)
            rows = sum(max(1, math.ceil(len(line) / columns)) for line in self.streamed.split("\n"))
            sys.stdout.write("\r" + (f"\033[{rows - 1}F" if rows > 1 else "") + "\033[J")
        else:
            sys.stdout.write("\n")
        sys.stdout.flush()
        self.streamed = ""

    def _failed(self, event: Failed) -> None:
        self.progress.clear()
        print(f"sepsum: {event.message}", file=sys.stderr)
        if self.format == "json" and self.output is None:
            print(json.dumps({"path": event.path, "error": event.message, "error_type": event.error_type}))
        if self.exit_code == 0:
            self.exit_code = event.exit_code or 1

    def _render(self, event: SummaryDone) -> str:
        if self.format == "json":
            payload = {"path": event.path, "summary": event.summary, "stats": event.stats,
                       "sentences": [sentence.to_json() for sentence in event.sentences],
                       "grounded_share": event.stats.get("grounded_share"),
                       "numbers_supported": event.stats.get("numbers_supported"),
                       "outline": [entry.to_json() for entry in event.outline],
                       "key_passages": [passage.to_json() for passage in event.key_passages]}
            if event.incomplete:
                payload["incomplete"] = True
            return json.dumps(payload, ensure_ascii=False) + "\n"
        summary = render_cited(event.summary, event.sentences)
        if self.format == "markdown":
            outline = "".join(f"- **{entry.label}** [{entry.line_label}]: {entry.line}\n" for entry in event.outline)
            return f"## {self._title(event.path)}\n\n{summary}\n" + (f"\n### Outline\n\n{outline}" if outline else "")
        return summary + "\n"

    def _title(self, path: str) -> str:
        title = self.document.title if self.document and self.document.path == path else ""
        return title or Path(path).name

    def _target(self, path: str) -> Path:
        assert self.output is not None
        if self.several or self.output.is_dir() or str(self.output).endswith(("/", "\\")):
            return self.output / (Path(path).name + _SUFFIX[self.format])
        return self.output
