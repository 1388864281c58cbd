"""``sepsum models``: install the default model, list, inspect, import, and download from the catalog."""

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

    listing = sub.add_parser("catalog", help="curated models to download, and which fit this machine")
    listing.add_argument("--json", action="store_true", help="print the table as JSON")
    listing.set_defaults(func=_catalog)

    get = sub.add_parser("download", help="download a catalog model from the Hugging Face Hub (network)")
    get.add_argument("name", metavar="NAME", help="a name from 'sepsum models catalog' (or its repo id)")
    get.add_argument("--force", action="store_true", help="download and install again even if installed")
    get.set_defaults(func=_download)

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
        print(f"{name:<{width}}  {entry.source:<8}  {size:>8}  {entry.path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from app.engine import catalog, devices
    from app.engine.estimate import estimate_from_info, format_bytes, model_info_for
    from app.errors import ModelError

    listed = catalog.find(args.name)
    try:
        name, info = model_info_for(args.name)
        where = ("path", str(info.path))
    except ModelError:
        if listed is None:
            raise
        name, info = listed.name, catalog.model_info(listed)  # sized from the catalog before a download
        where = ("path", f"not downloaded: 'sepsum models download {listed.name}' fetches {listed.repo}")
    rows = [
        ("name", name),
        where,
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
    if listed is not None:
        rows += [("catalog", f"{listed.repo} at {listed.revision[:12]}"),
                 ("licence", listed.licence + (" (gated: accept it on the model's page)" if listed.gated else "")),
                 ("languages", ", ".join(listed.languages))]
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


def _run_cache_config():
    """The cache of a run with the saved settings (what the pre-run memory check sizes)."""
    from app import settings
    from app.request import cache_config, from_settings

    values = settings.load()
    return cache_config(from_settings([], values)), values


def _catalog(args: argparse.Namespace) -> int:
    import json

    from app.engine import fit, hardware
    from app.engine.estimate import format_bytes, preflight_tokens

    machine = hardware.probe()
    cache_config, values = _run_cache_config()
    rows = fit.evaluate(machine, cache_config, decode_weights=values.get("decode_weights") or "auto")
    pick = fit.recommend(machine, rows)
    if args.json:
        print(json.dumps(fit.as_json(machine, rows, pick, cache_config), indent=2))
        return 0
    budget = f"{cache_config.policy} cache" + (f" of {cache_config.max_entries} entries" if cache_config.bounded
                                               else f", {preflight_tokens(cache_config)} tokens")
    print(f"This machine: {hardware.describe(machine)}")
    print(f"Memory for weights + {budget} + runtime (the pre-run estimate); verdict per quantization:")
    for line in fit.table_lines(rows, pick):
        print("  " + line)
    if pick is None:
        print("Nothing fits: close other programs or choose a smaller cache (settings).")
    else:
        print(f"Recommended: {pick.describe()}, marked *. "
              f"Download with 'sepsum models download {pick.model.name}' ({format_bytes(pick.model.download_bytes)}).")
    no_room = [row.model.name for row in rows if not row.installed and row.model.download_bytes > machine.disk_free]
    if no_room:
        print(f"Not enough free disk to download: {', '.join(no_room)}")
    gated = [row.model.name for row in rows if row.model.gated]
    if gated:
        print(f"Gated (accept the licence on the model's page and log in first): {', '.join(gated)}")
    return 0


def _download(args: argparse.Namespace) -> int:
    import sys
    import threading

    from app.engine import catalog, download, registry
    from app.engine.estimate import format_bytes
    from app.errors import Cancelled

    model = catalog.get(args.name)
    installed = registry.load().get(model.name)
    if installed is not None and Path(installed.path).exists() and not args.force:
        print(f"{model.name}: already installed at {installed.path}; use it with --model {model.name}")
        return 0
    if model.gated:
        print(f"{model.name} is gated: it downloads only after you accept its licence ({model.licence}) at "
              f"{model.page_url} and log in with 'hf auth login'", file=sys.stderr)
    plan = download.plan(model)
    print(f"{model.name}: {len(plan.files)} files, {format_bytes(plan.total_bytes)} from {model.repo} "
          f"at {plan.commit[:12]} ({download.endpoint()})", file=sys.stderr)
    tty = sys.stderr.isatty()
    last = {"line": ""}

    def show(progress: download.DownloadProgress) -> None:
        line = f"{progress.fraction * 100:5.1f}%  {progress.describe()}"
        if tty:
            print("\r" + line.ljust(len(last["line"])), end="", file=sys.stderr, flush=True)
        elif progress.file != last.get("file"):
            print(line, file=sys.stderr)
        last.update(line=line, file=progress.file)

    try:
        entry = download.download(model, cancel=threading.Event(), on_progress=show, force=args.force,
                                  plan_=plan)
    except KeyboardInterrupt:
        raise Cancelled(f"download of {model.name} stopped (Ctrl-C): run the same command again to resume") from None
    finally:
        if tty and last["line"]:
            print(file=sys.stderr)
    print(f"{entry.name}: installed at {entry.path} (commit {str(entry.notes.get('commit', ''))[:12]}); "
          f"use it with --model {entry.name}")
    return 0
