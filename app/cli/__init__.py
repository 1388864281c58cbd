"""The ``sepsum`` command: a thin dispatcher over one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed namespace and returning an exit code). Typed
:class:`app.errors.SepSumError` exceptions become one line on stderr and their exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from app import __version__, library_noise, offline
from app.errors import SepSumError

# Subcommand modules, in the order they appear in --help. Each one must import: a bundle that
# lost a module would otherwise just lose its command (``sepsum gui``) without a word.
SUBCOMMANDS = ["summarize", "extract", "models", "eval", "gui", "adapt"]


class BrokenInstall(SepSumError):
    """A subcommand's module does not import: the installation is incomplete."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepsum",
        description="Summarize long documents and chat exports offline with a SepLLM compressed KV cache.",
    )
    parser.add_argument("--version", action="version", version=f"sepsum {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"app.cli.{name}_cmd")
        except ImportError as exc:
            raise BrokenInstall(f"the '{name}' command cannot load ({type(exc).__name__}: {exc}): "
                                "this installation is incomplete, reinstall sepsum") from exc
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    offline.enforce()
    library_noise.silence()
    try:
        parser = build_parser()
    except BrokenInstall as exc:
        print(f"sepsum: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except SepSumError as exc:
        print(f"sepsum: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sepsum: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
