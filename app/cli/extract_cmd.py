"""``sepsum extract``: print the normalized document (text the model reads, or JSON) for a file."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="show the clean text SepSum reads from a PDF, text file or chat export",
        description="Read PATH (PDF, text/Markdown, chat export file, folder or zip) and print the normalized "
                    "document. Unreadable input exits with code 3 and one line on stderr.",
    )
    parser.add_argument("path", metavar="PATH", help="file, export folder or zip")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text: what the model reads (default); json: kind, title, units, metadata, warnings")
    parser.add_argument("--password", metavar="PW", default=None, help="password of an encrypted PDF")
    parser.add_argument("--max-size-mb", type=float, default=None, metavar="MB",
                        help="refuse files larger than this (default 512)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.ingest.detect import load_document
    from app.ingest.limits import MIB, Limits

    limits = Limits() if args.max_size_mb is None else Limits(max_file_bytes=max(1, int(args.max_size_mb * MIB)))
    document = load_document(args.path, password=args.password, limits=limits)
    if args.format == "json":
        json.dump(document.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for warning in document.warnings:
        print(f"sepsum: warning: {warning}", file=sys.stderr)
    sys.stdout.write(document.text_for_model().rstrip("\n") + "\n")
    return 0
