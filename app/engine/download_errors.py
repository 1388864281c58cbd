"""Download failures as one line each: what happened (no network, gated, wrong revision, disk, ...) and the fix."""

from __future__ import annotations

import errno

from app import paths
from app.engine.catalog import CatalogModel
from app.errors import DownloadError


def translate(exc: BaseException, model: CatalogModel, host: str, file: str | None = None) -> DownloadError:
    """One line per failure kind, naming what happened and what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"{model.repo}@{model.revision[:12]}" + (f" ({file})" if file else "")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    gated_fix = (f"accept its licence ({model.licence}) at {model.page_url} while logged in, then run "
                 "'hf auth login' (or set HF_TOKEN) and download again")
    if isinstance(exc, GatedRepoError) or (model.gated and status in (401, 403)):
        return DownloadError(f"{model.repo} is gated and this account has no access ({status}): {gated_fix}")
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"{model.repo} has no revision {model.revision} ({status or 404}): the catalog's pin "
                             "is wrong or was removed upstream; update SepSum or report it")
    if isinstance(exc, RemoteEntryNotFoundError):
        return DownloadError(f"{what} is missing on {host} ({status or 404}): update SepSum's catalog")
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(f"{model.repo} was not found on {host} ({status}): check the name, or log in "
                             "with 'hf auth login' if it is private")
    if isinstance(exc, HfHubHTTPError):
        if status in (401, 403):
            return DownloadError(f"{host} refused {what} ({status}): {gated_fix}")
        return DownloadError(f"{host} answered {status} for {what}: try again later")
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError(f"the hub's offline mode blocked {what}: unset HF_HUB_OFFLINE and retry")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(f"the disk filled up while downloading {what} into {paths.downloads_dir()}: "
                             "free disk space and run the download again (finished files are kept)")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _is_network_error(exc):
        return DownloadError(f"cannot reach {host} ({detail}): check the network connection (or HF_ENDPOINT) "
                             "and run the download again; finished files are kept")
    return DownloadError(f"downloading {what} failed ({detail}): run the download again")


def _is_network_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)) or (
        isinstance(exc, OSError) and "Consistency check failed" in str(exc))
