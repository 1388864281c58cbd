"""A loopback Hugging Face Hub for download tests: the hub's URL layout, headers and error codes on 127.0.0.1.

Serves ``GET /api/models/{repo}/revision/{rev}`` (the file listing with sizes, LFS sha256 and git blob
ids) and ``HEAD/GET /{repo}/resolve/{rev}/{file}`` (with ``Range``), as huggingface_hub expects them.
Faults for tests: a gated repo (403 ``GatedRepo``), a dropped connection part-way through a file,
corrupted bytes behind an honest listing, and a log of every request with its ``Range`` header.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: The commit the loopback repos pretend to be at (a test value, not a real hub commit).
LOOPBACK_COMMIT = hashlib.sha1(b"sepsum loopback hub").hexdigest()


@dataclass
class HubRepo:
    """A repository: ``files`` maps names to bytes; ``*.safetensors`` and ``*.bin`` are served as LFS files."""

    repo_id: str
    files: dict[str, bytes]
    commit: str = LOOPBACK_COMMIT
    gated: bool = False

    @classmethod
    def from_folder(cls, repo_id: str, folder: Path, **kwargs) -> HubRepo:
        return cls(repo_id, {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}, **kwargs)

    @staticmethod
    def is_lfs(name: str) -> bool:
        return name.endswith((".safetensors", ".bin"))

    def sibling(self, name: str) -> dict:
        data = self.files[name]
        blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        entry: dict = {"rfilename": name, "size": len(data), "blobId": blob}
        if self.is_lfs(name):
            entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


@dataclass
class Faults:
    drop_after: dict[str, int] = field(default_factory=dict)  # file -> bytes sent before the next GET is cut
    corrupt: dict[str, bytes] = field(default_factory=dict)  # file -> bytes served instead of the real ones
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    sent: dict[str, int] = field(default_factory=dict)  # file -> body bytes sent
    seconds_per_mb: float = 0.0  # slow the transfers down (a download in progress, a cancel part-way)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, repo_id: str, revision: str) -> HubRepo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated:
            self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                                          "authorized list.")
            return None
        if revision not in (repo.commit, "main"):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def do_HEAD(self) -> None:  # noqa: N802 (http.server API)
        self._serve()

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self._serve()

    def _serve(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.faults.requests.append((self.command, path, self.headers.get("Range")))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
        if api:
            repo = self._repo(api.group(1), api.group(2))
            if repo is not None:
                body = json.dumps({"id": repo.repo_id, "sha": repo.commit, "gated": repo.gated, "private": False,
                                   "siblings": [repo.sibling(n) for n in repo.files]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            return
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not resolve:
            self._error(404, "EntryNotFound", "unknown path")
            return
        repo = self._repo(resolve.group(1), resolve.group(2))
        if repo is None:
            return
        name = resolve.group(3)
        if name not in repo.files:
            self._error(404, "EntryNotFound", f"{name} does not exist")
            return
        self._send_file(repo, name)

    def _send_file(self, repo: HubRepo, name: str) -> None:
        faults = self.server.faults
        data = faults.corrupt.get(name, repo.files[name])
        meta = repo.sibling(name)
        etag = meta["lfs"]["sha256"] if "lfs" in meta else meta["blobId"]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", repo.commit)
        if "lfs" in meta:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(repo.files[name])))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = faults.drop_after.pop(name, None) if self.command == "GET" else None
        if cut is not None and cut > start:
            self.wfile.write(body[:cut - start])
            self.wfile.flush()
            faults.sent[name] = faults.sent.get(name, 0) + cut - start
            self.close_connection = True
            self.connection.shutdown(2)  # the transfer breaks off mid-file
            return
        try:
            for offset in range(0, len(body), 1 << 20):
                piece = body[offset:offset + (1 << 20)]
                self.wfile.write(piece)
                faults.sent[name] = faults.sent.get(name, 0) + len(piece)
                if faults.seconds_per_mb:
                    time.sleep(faults.seconds_per_mb * len(piece) / 1e6)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a cancelled download)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, repos: dict[str, HubRepo]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = repos
        self.faults = Faults()


class LoopbackHub:
    """A started server (``url``, ``faults``); ``stop()`` shuts it down."""

    def __init__(self, *repos: HubRepo):
        self._server = _Server({repo.repo_id: repo for repo in repos})
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults(self) -> Faults:
        return self._server.faults

    @property
    def repos(self) -> dict[str, HubRepo]:
        return self._server.repos

    def gets(self, name: str) -> list[str | None]:
        """The ``Range`` headers of every GET of a file (None: from the start)."""
        return [rng for method, path, rng in self.faults.requests if method == "GET" and path.endswith("/" + name)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
