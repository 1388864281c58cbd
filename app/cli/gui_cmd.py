"""``sepsum gui``: open the desktop app, optionally with files queued, started and screenshotted."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gui", help="open the desktop app")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILES", help="documents or folders to queue")
    parser.add_argument("--autostart", action="store_true", help="start summarizing the queued files at once")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="write a PNG of the window when every queued file is done")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="quit when the queue is done (exit 0 if every file was summarized, 1 otherwise)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Qt is imported only here, so `sepsum summarize` and the rest never load PySide6.
    from app.gui.application import run

    missing = [str(path) for path in args.files if not path.exists()]
    if missing:
        from app.errors import DocumentError

        raise DocumentError(f"not found: {', '.join(missing)}: check the path")
    return run(args.files, autostart=args.autostart, screenshot=args.screenshot,
               exit_when_done=args.exit_when_done)
