"""A model hub on 127.0.0.1 that answers the requests huggingface_hub makes of
huggingface.co, serving local folders as repositories; for download tests (`HF_ENDPOINT`).

What it mirrors, read from the installed huggingface_hub (2.4):
- `file_download.get_hf_file_metadata`: `HEAD {endpoint}/{repo}/resolve/{revision}/{file}`
  (URL from `hf_hub_url`, `constants.HUGGINGFACE_CO_URL_TEMPLATE`); it reads
  `X-Repo-Commit`, `X-Linked-Etag` or `ETag`, `X-Linked-Size` or (not redirected)
  `Content-Length`, and `Location` for the file's address.
- `utils._http._httpx2_follow_hub_redirects_with_backoff`: a redirect to another origin
  (the CDN holding large files) is not followed; the metadata is on the redirect itself.
  huggingface.co answers a large (LFS) file with 302 to its CDN, `X-Linked-Etag` the
  file's sha256 and `X-Linked-Size` its size; a small file with 200, `ETag` its git blob
  id. Here the CDN is a second port of the same server, so a different origin.
- `file_download.http_get`: `GET` on that address, streamed; `Content-Length` sets the
  progress bar's total and is checked against the bytes received.
- `file_download._get_metadata_or_catch_error`: a missing file is 404 with
  `X-Error-Code: EntryNotFound` and `X-Repo-Commit` (cached under `.no_exist/`).
- `utils._http.hf_raise_for_status`: `X-Error-Code: RepoNotFound` (404, or 401 as the hub
  answers an unknown id without a token) -> RepositoryNotFoundError; `GatedRepo` (401, or
  403 with a token not granted access) -> GatedRepoError.
- `hf_api.HfApi.model_info`: `GET {endpoint}/api/models/{repo}/revision/{revision}`, JSON
  with `id`, `sha` and `siblings` [{`rfilename`}].

Every request is recorded (method, path) so that a test can tell a download from a
cache hit.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from capture._loop_thread import LoopThread

HOST = "127.0.0.1"
LFS_FROM = 10_000  # bytes from which a file is stored in LFS (huggingface.co: binaries)


def _disposition(file: str) -> dict[str, str]:
    """`http_get` names the progress bar after `filename="..."` (HEADER_FILENAME_PATTERN)."""
    name = Path(file).name
    return {"Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; "
                                   f'filename="{name}";'}


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub(LoopThread):
    """`repos` (id -> folder) served like huggingface.co; the files of `gated` ids answer 401
    GatedRepo, unknown ids 401 RepoNotFound. ``with FakeHub(...) as hub: hub.endpoint``."""

    def __init__(self, repos: Mapping[str, Path], gated: tuple[str, ...] = ()) -> None:
        super().__init__("fake-hub")
        self.repos = {repo: Path(folder) for repo, folder in repos.items()}
        self.gated = gated
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._ports: list[int] = []

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self._ports[0]}"

    @property
    def cdn(self) -> str:
        return f"http://{HOST}:{self._ports[1]}"

    def commit(self, repo: str) -> str:
        """The repository's commit id: a hash of its files' names and contents."""
        digest = hashlib.sha1(repo.encode())
        for path in sorted(self.repos[repo].rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(self.repos[repo]).as_posix().encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def downloads(self) -> list[str]:
        """Paths of the file bodies sent (GET on /resolve and the CDN)."""
        with self._lock:
            return [path for method, path in self.requests
                    if method == "GET" and ("/resolve/" in path or path.startswith("/cdn/"))]

    def _record(self, request: web.Request) -> None:
        with self._lock:
            self.requests.append((request.method, request.path))

    def _repo_error(self, request: web.Request, repo: str, *, files: bool = True
                    ) -> web.Response | None:
        """An unknown id: 401 RepoNotFound without a token, 404 with one (any token is
        valid here). A gated repository's files: 401 GatedRepo without a token, 403 with
        one that was not granted access; its `model_info` stays public, as on the hub."""
        token = "Authorization" in request.headers
        if repo in self.gated and files:
            return web.Response(status=403 if token else 401, headers={
                "X-Error-Code": "GatedRepo",
                "X-Error-Message": f"Access to model {repo} is restricted. You must have access "
                                   "to it and be authenticated to access it. Please log in."})
        if repo not in self.repos:
            return web.Response(status=404 if token else 401, headers={
                "X-Error-Code": "RepoNotFound",
                "X-Error-Message": "Repository not found" if token
                else "Invalid username or password."})
        return None

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        info = request.match_info
        repo = f"{info['org']}/{info['name']}"
        if (error := self._repo_error(request, repo)) is not None:
            return error
        commit = self.commit(repo)
        if info["revision"] not in ("main", commit):
            return web.Response(status=404, headers={"X-Error-Code": "RevisionNotFound"})
        path = self.repos[repo] / info["file"]
        if not path.is_file() or ".." in Path(info["file"]).parts:
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound",
                                                     "X-Repo-Commit": commit})
        data = path.read_bytes()
        if len(data) >= LFS_FROM:
            sha = hashlib.sha256(data).hexdigest()
            return web.Response(status=302, headers={
                "Location": f"{self.cdn}/cdn/{repo}/{sha}?file={quote(info['file'])}",
                "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                "ETag": f'"{_git_blob_id(sha.encode())}"'})
        headers = {"X-Repo-Commit": commit, "ETag": f'"{_git_blob_id(data)}"'}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        return web.Response(body=data, headers={**headers,
                                                **_disposition(info["file"])})

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """The large file's body, streamed in chunks like a CDN; the file name comes back in
        Content-Disposition, as the hub's signed CDN addresses ask for."""
        self._record(request)
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        name = request.query.get("file", "")
        folder = self.repos.get(repo)
        path = folder / name if folder is not None and name else None
        if path is None or ".." in Path(name).parts or not path.is_file():
            return web.Response(status=404)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != request.match_info["sha"]:
            return web.Response(status=404)
        response = web.StreamResponse(headers={
            "Content-Length": str(len(data)), "Content-Type": "application/octet-stream",
            **_disposition(name)})
        await response.prepare(request)
        for start in range(0, len(data), 64 * 1024):
            await response.write(data[start:start + 64 * 1024])
        await response.write_eof()
        return response

    async def _model_info(self, request: web.Request) -> web.Response:
        self._record(request)
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        if (error := self._repo_error(request, repo, files=False)) is not None:
            return error
        folder = self.repos[repo]
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        gated = "manual" if repo in self.gated else False
        return web.json_response({"id": repo, "modelId": repo, "sha": self.commit(repo),
                                  "private": False, "gated": gated,
                                  "siblings": [{"rfilename": f} for f in files]})

    async def _unknown(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(status=404, text="not served by the fake hub")

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/models/{org}/{name}/revision/{revision}",
                             self._model_info)
        app.router.add_route("GET", "/api/models/{org}/{name}", self._model_info)
        for method in ("HEAD", "GET"):
            app.router.add_route(method, "/{org}/{name}/resolve/{revision}/{file:.+}",
                                 self._resolve)
        app.router.add_route("GET", "/cdn/{org}/{name}/{sha}", self._cdn)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    async def _serve(self, stopping: asyncio.Event) -> None:
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            for _ in range(2):  # the hub, then the CDN (another origin)
                site = web.TCPSite(runner, HOST, 0, reuse_address=False)
                await site.start()
                self._ports.append(runner.addresses[-1][1])
            self._bound()
            await stopping.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> FakeHub:
        error = self._launch()
        if error is not None:
            raise error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
