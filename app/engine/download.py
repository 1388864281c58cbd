"""Download a catalog model from the Hugging Face Hub, on the user's request only, and install it atomically.

``plan(model)`` asks the hub which files the pinned revision holds; ``download(model, cancel=...,
on_progress=...)`` fetches the safetensors weights, tokenizer and config through ``huggingface_hub``
(its metadata API and its ``http_get``, which retries and resumes within one call), into
``downloads/NAME`` (never listed), resuming ``*.part`` files left by an earlier interrupted run. Each
file is checked against the hub's sha256 (weights) or git blob id (small files) and the catalog's
pins; only then is the folder moved into ``models/NAME`` and registered. The hub's offline switches
are lifted for the duration of the download and set again afterwards (:mod:`app.offline`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app import offline, paths
from app.engine.catalog import CatalogModel
from app.engine.default_model import file_sha256
from app.engine.download_errors import translate
from app.engine.download_progress import DownloadProgress, ProgressBar, Stopped, Tracker
from app.engine.estimate import format_bytes
from app.errors import Cancelled, DownloadError

__all__ = ["DownloadPlan", "DownloadProgress", "RemoteFile", "download", "install", "plan", "verify_file"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Files a model needs besides its weights; anything else in the repository is left on the hub.
SUPPORT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                 "chat_template.jinja", "chat_template.json", "model.safetensors.index.json")
_MANIFEST = "sepsum-download.json"
_DISK_MARGIN = 200_000_000  # beyond the files themselves: the registry, logs, filesystem slack


@dataclass(frozen=True)
class RemoteFile:
    """One file of the pinned revision: its size, and the sha256 (LFS) or git blob id (small files)."""

    name: str
    size: int
    sha256: str | None = None
    git_sha1: str | None = None


@dataclass(frozen=True)
class DownloadPlan:
    """What a download fetches: the commit the revision resolved to and the files wanted from it."""

    model: CatalogModel
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def endpoint() -> str:
    """The hub to download from: ``HF_ENDPOINT`` read now (tests point it at a loopback server)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def wanted(name: str) -> bool:
    """Whether a repository file is one SepSum fetches: top-level safetensors weights and support files.

    Pickled weights (``*.bin``), remote code (``*.py``) and Mistral's ``consolidated.safetensors``
    (the same weights in another layout) are never fetched.
    """
    if "/" in name:
        return False
    if name in SUPPORT_FILES:
        return True
    return name.endswith(".safetensors") and not name.startswith("consolidated")


def staging_dir(model: CatalogModel) -> Path:
    """Where a download collects its files until they are all verified (resumed from, never listed)."""
    return paths.downloads_dir() / model.name


def free_disk_bytes(folder: Path) -> int:
    """Free bytes on the filesystem holding ``folder`` (a function so tests can pretend the disk is full)."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    return shutil.disk_usage(existing).free


# the plan --------------------------------------------------------------------------------------
def plan(model: CatalogModel) -> DownloadPlan:
    """Ask the hub for the revision's commit and its files (sizes and hashes); network, offline after."""
    from huggingface_hub import HfApi

    with offline.network_allowed():
        try:
            info = HfApi(endpoint=endpoint()).model_info(model.repo, revision=model.revision, files_metadata=True)
        except Exception as exc:  # noqa: BLE001 - every hub/network failure becomes one typed line
            raise translate(exc, model, endpoint()) from exc
    siblings = info.siblings or []
    names = [s.rfilename for s in siblings]
    files = tuple(
        RemoteFile(name=s.rfilename, size=int(s.lfs.size if s.lfs else s.size or 0),
                   sha256=s.lfs.sha256 if s.lfs else None, git_sha1=None if s.lfs else s.blob_id)
        for s in siblings if wanted(s.rfilename))
    if not any(f.name.endswith(".safetensors") for f in files):
        pickles = [n for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt"))]
        reason = f"only pickled weights ({pickles[0]})" if pickles else "no safetensors weights"
        raise DownloadError(f"{model.repo}@{model.revision[:12]} has {reason}: SepSum loads safetensors only; "
                            "choose another model")
    if "config.json" not in {f.name for f in files}:
        raise DownloadError(f"{model.repo}@{model.revision[:12]} has no config.json: choose another model")
    for remote in files:
        pinned = model.files.get(remote.name)
        if pinned is not None and pinned.sha256 and remote.sha256 and pinned.sha256 != remote.sha256:
            raise DownloadError(f"{remote.name} of {model.repo} on {endpoint()} has sha256 {remote.sha256[:12]}…, the "
                                f"catalog pins {pinned.sha256[:12]}…: the hub served other weights; not downloading")
    return DownloadPlan(model=model, commit=str(info.sha or model.revision), files=files)


# the download ----------------------------------------------------------------------------------
def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's object id, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()



def verify_file(path: Path, remote: RemoteFile, model: CatalogModel) -> None:
    """Raise :class:`DownloadError` (and delete the file) when its size or hash is not the expected one."""
    size = path.stat().st_size
    problem = None
    if size != remote.size:
        problem = f"{format_bytes(size)} instead of {format_bytes(remote.size)}"
    elif remote.sha256 or (model.files.get(remote.name) and model.files[remote.name].sha256):
        expected = remote.sha256 or model.files[remote.name].sha256
        actual = file_sha256(path)
        if actual != expected:
            problem = f"sha256 {actual[:12]}…, expected {expected[:12]}…"
    elif remote.git_sha1:
        actual = _git_blob_sha1(path)
        if actual != remote.git_sha1:
            problem = f"git id {actual[:12]}…, expected {remote.git_sha1[:12]}…"
    if problem:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{remote.name} of {model.repo} arrived corrupted ({problem}): deleted it; run the "
                            "download again")


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, folder / _MANIFEST)


def _prepare_staging(plan_: DownloadPlan) -> tuple[Path, dict]:
    """The staging folder with what an earlier run of the same commit left (else emptied)."""
    folder = staging_dir(plan_.model)
    manifest = _read_manifest(folder)
    if folder.exists() and manifest.get("commit") != plan_.commit:
        shutil.rmtree(folder)  # another revision's leftovers cannot be resumed
        manifest = {}
    paths.ensure(folder)
    manifest = {"repo": plan_.model.repo, "commit": plan_.commit, "verified": manifest.get("verified", {})}
    _write_manifest(folder, manifest)
    return folder, manifest


def _check_disk(plan_: DownloadPlan, folder: Path, remaining: int) -> None:
    free = free_disk_bytes(folder)
    if free < remaining + _DISK_MARGIN:
        raise DownloadError(f"{plan_.model.name} needs {format_bytes(remaining + _DISK_MARGIN)} of disk in {folder.parent}, "
                            f"{format_bytes(free)} free: free disk space or set SEPSUM_HOME to a larger disk")


def _fetch(plan_: DownloadPlan, remote: RemoteFile, folder: Path, tracker: Tracker) -> None:
    """Download one file to ``NAME.part`` (appending to what is there), then rename it to ``NAME``."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    part = folder / (remote.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    tracker.start_file(tracker.index, remote.name, have)
    url = hf_hub_url(plan_.model.repo, remote.name, revision=plan_.commit, endpoint=endpoint())
    if have:
        log.info("resuming %s at byte %d of %d", remote.name, have, remote.size)
    with open(part, "ab") as handle:
        http_get(url, handle, resume_size=have, headers=build_hf_headers(), expected_size=remote.size,
                 displayed_filename=remote.name, tqdm_class=functools.partial(ProgressBar, tracker))
    os.replace(part, folder / remote.name)


def download(model: CatalogModel, *, cancel: threading.Event | None = None,
             on_progress: Callable[[DownloadProgress], None] | None = None, force: bool = False,
             plan_: DownloadPlan | None = None):
    """Download and install ``model``; return its registry entry.

    Raises :class:`DownloadError` (one line: network, gated, wrong revision, disk, corrupted file) and
    :class:`~app.errors.Cancelled` when ``cancel`` is set; what was downloaded stays in the staging
    folder and the next call resumes it. Nothing reaches ``models/`` or the registry before every file
    is verified.
    """
    from app.engine import registry

    existing = registry.load().get(model.name)
    if existing is not None and Path(existing.path).exists() and not force:
        if existing.source == "default":
            raise DownloadError(f"{model.name} is the embedded default model, already installed: nothing to "
                                "download")
        return existing
    plan_ = plan_ or plan(model)
    folder, manifest = _prepare_staging(plan_)
    remaining = sum(f.size for f in plan_.files if manifest["verified"].get(f.name) != f.size)
    _check_disk(plan_, folder, remaining - _partial_bytes(folder, plan_))
    tracker = Tracker(model.name, len(plan_.files), plan_.total_bytes, cancel, on_progress)
    with offline.network_allowed():
        for index, remote in enumerate(plan_.files, start=1):
            tracker.index = index
            target = folder / remote.name
            if manifest["verified"].get(remote.name) == remote.size and target.is_file():
                tracker.start_file(index, remote.name, remote.size)
                continue
            try:
                _fetch(plan_, remote, folder, tracker)
            except Stopped:
                raise Cancelled(f"download of {model.name} stopped: run it again to resume "
                                f"({format_bytes(tracker.done)} of {format_bytes(plan_.total_bytes)} kept)") from None
            except DownloadError:
                raise
            except Exception as exc:  # noqa: BLE001 - hub, network and disk errors become one typed line
                raise translate(exc, model, endpoint(), remote.name) from exc
            verify_file(target, remote, model)
            manifest["verified"][remote.name] = remote.size
            _write_manifest(folder, manifest)
    tracker.report(force=True)
    return install(plan_, folder, force=force)


def _partial_bytes(folder: Path, plan_: DownloadPlan) -> int:
    return sum((folder / (f.name + ".part")).stat().st_size for f in plan_.files
               if (folder / (f.name + ".part")).is_file())


def install(plan_: DownloadPlan, folder: Path, *, force: bool = False):
    """Check the verified staging folder is a loadable model, move it into ``models/`` and register it."""
    from app.engine import registry
    from app.engine.importer import check_supported
    from app.engine.model_info import read_model_info
    from app.engine.registry import ModelEntry

    model = plan_.model
    (folder / _MANIFEST).unlink(missing_ok=True)
    info = read_model_info(folder)  # refuses pickles and folders without config or weights
    check_supported(info.model_type, folder)
    target = paths.ensure(paths.models_dir()) / model.name
    old = target.with_name(target.name + ".replaced")
    if target.exists():
        if not force:
            raise DownloadError(f"{target} already exists: pass --force to replace it")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(folder, target)
    entry = ModelEntry(name=model.name, path=str(target), source="download", format="safetensors", notes={
        "repo": model.repo, "revision": model.revision, "commit": plan_.commit, "catalog": model.name,
        "licence": model.licence, "architecture": info.architecture,
        "files": {f.name: {"size": f.size, **({"sha256": f.sha256} if f.sha256 else {"git_sha1": f.git_sha1})}
                  for f in plan_.files}})
    try:
        registry.add(entry)
    except Exception:
        os.replace(target, folder)  # never leave an unregistered model in models/
        raise
    shutil.rmtree(old, ignore_errors=True)
    log.info("installed %s (%s) at %s", model.name, plan_.commit[:12], target)
    return entry
