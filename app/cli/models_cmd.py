"""``sepsum models``: install the default model, list, inspect and import models."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="install, list, inspect and import models")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    install = sub.add_parser("install-default", help="install the embedded default model (once)")
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    install.set_defaults(func=_install_default)

    listing = sub.add_parser("list", help="list registered models")
    listing.set_defaults(func=_list)

    info = sub.add_parser("info", help="architecture, size and memory needs of a model")
    info.add_argument("name", metavar="NAME", help="a registered name, a model folder or a .gguf file")
    info.set_defaults(func=_info)

    imp = sub.add_parser(
        "import", help="register a Hugging Face folder (safetensors) or convert a .gguf file"
    )
    imp.add_argument("path", metavar="PATH", help="a local model folder or .gguf file")
    imp.add_argument("--name", help="name to register it under (default: from the file or folder name)")
    imp.add_argument("--force", action="store_true", help="import again even if already imported")
    imp.add_argument("--languages", metavar="CODES",
                     help="languages the model writes, as ISO codes (e.g. en,fr,cs); summaries are asked only in "
                          "these (default: English is assumed)")
    imp.set_defaults(func=_import)


def _install_default(args: argparse.Namespace) -> int:
    from app.engine import default_model

    already = default_model.is_installed() and not args.force
    folder = default_model.install(force=args.force)
    print(
        f"{default_model.DEFAULT_MODEL_NAME}: {'already installed' if already else 'installed'} at {folder}"
    )
    return 0


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.glob("*") if p.is_file())


def _list(args: argparse.Namespace) -> int:
    import sys

    from app.engine import registry
    from app.engine.estimate import format_bytes

    entries = registry.load()
    if not entries:
        print(
            "no models registered: run 'sepsum models install-default' or 'sepsum models import PATH'",
            file=sys.stderr,
        )
        return 0
    width = max(len(name) for name in entries)
    for name, entry in sorted(entries.items()):
        path = Path(entry.path)
        size = format_bytes(_folder_bytes(path)) if path.exists() else "missing"
        print(f"{name:<{width}}  {entry.source:<7}  {size:>8}  {entry.path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from app.engine import devices
    from app.engine.estimate import estimate_from_info, format_bytes, model_info_for

    name, info = model_info_for(args.name)
    rows = [
        ("name", name),
        ("path", str(info.path)),
        ("architecture", info.architecture),
        ("parameters", f"{info.parameters / 1e6:,.1f} M"),
        ("layers", info.layers),
        ("heads", info.heads),
        ("kv heads", info.kv_heads),
        ("head_dim", info.head_dim),
        ("max context", f"{info.max_context:,} tokens"),
        ("dtype", info.dtype + (f" (pre-quantized: {info.quantization})" if info.quantization else "")),
        ("size on disk", format_bytes(info.size_on_disk)),
        ("chat template", "yes" if info.has_chat_template else "no"),
    ]
    device = devices.choose_device("auto")
    tokens = min(info.max_context or 8192, 8192)
    for quant in devices.QUANTS:
        estimate = estimate_from_info(name, info, device, quant, None, tokens)
        rows.append(
            (f"memory {quant}", f"{estimate.describe()} ({device}, {estimate.dtype}, {tokens} tokens)")
        )
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from app.engine.importer import import_model

    entry, created = import_model(args.path, args.name, force=args.force)
    verb = "imported" if created else "already imported"
    print(f"{entry.name}: {verb} ({entry.source}) at {entry.path}")
    if args.languages:
        from app.engine.languages import declare_languages

        codes = declare_languages(entry.name, args.languages.split(","))
        print(f"{entry.name}: writes {', '.join(codes)}")
    return 0
