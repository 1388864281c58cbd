"""``sepsum models``: install the default model, list, inspect and import models."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="install, list, inspect and import models")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    install = sub.add_parser("install-default", help="install the embedded default model (once)")
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    install.set_defaults(func=_install_default)


def _install_default(args: argparse.Namespace) -> int:
    from app.engine import default_model

    already = default_model.is_installed() and not args.force
    folder = default_model.install(force=args.force)
    print(f"{default_model.DEFAULT_MODEL_NAME}: {'already installed' if already else 'installed'} at {folder}")
    return 0
