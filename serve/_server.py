"""Run the app on 127.0.0.1 in a thread of its own, for the CLI and the tests."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

from aiohttp import web

from pipeline._errors import PipelineError
from serve._app import make_app
from serve._context import ServeContext

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class ServeError(PipelineError):
    """The server could not start (port taken, sessions folder missing)."""


class ServeThread:
    """The app on its own event loop in a daemon thread, bound to 127.0.0.1 only.

    ``with ServeThread(ctx, port=0) as server: server.url`` starts it (returning once bound)
    and stops it on exit. The token is new for every start unless one is given."""

    def __init__(self, ctx: ServeContext, *, port: int = 0, token: str | None = None) -> None:
        if not ctx.sessions_dir.is_dir():
            raise ServeError(f"{ctx.sessions_dir} is not a folder; pass --sessions with the "
                             "folder your sessions are recorded into")
        if not 0 <= port <= 65535:
            raise ServeError(f"port {port} is out of range; use 0..65535 (0 picks a free one)")
        self.ctx = ctx
        self.token = token or secrets.token_urlsafe(24)
        self._requested = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The address to open: it carries the token that lets the browser in."""
        return f"{self.base_url}/?token={self.token}"

    def start(self) -> ServeThread:
        if self._thread is not None:
            raise ServeError("the server is already started")
        self._thread = threading.Thread(target=self._run, name="stpe-serve", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise ServeError(f"cannot serve on {HOST}:{self._requested} ({self._error}); "
                             "pick another --port, or 0 for a free one") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), or logged if it was running
            if self._ready.is_set():
                logger.exception("the server thread failed")
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(make_app(self.ctx, self.token), access_log=None,
                               handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self._requested, reuse_address=False)
            await site.start()
            self._port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        """Stop serving and wait for the thread; idempotent."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> ServeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
