"""Run the app on 127.0.0.1 in a thread of its own, for the CLI and the tests."""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web

from capture._loop_thread import LoopThread
from pipeline._errors import PipelineError
from serve._app import make_app
from serve._context import ServeContext

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class ServeError(PipelineError):
    """The server could not start (port taken, sessions folder missing)."""


class ServeThread(LoopThread):
    """The app on its own event loop in a daemon thread, bound to 127.0.0.1 only.

    ``with ServeThread(ctx, port=0) as server: server.url`` starts it (returning once bound)
    and stops it on exit. The token is new for every start unless one is given."""

    def __init__(self, ctx: ServeContext, *, port: int = 0, token: str | None = None) -> None:
        if not ctx.sessions_dir.is_dir():
            raise ServeError(f"{ctx.sessions_dir} is not a folder; pass --sessions with the "
                             "folder your sessions are recorded into")
        if not 0 <= port <= 65535:
            raise ServeError(f"port {port} is out of range; use 0..65535 (0 picks a free one)")
        super().__init__("stpe-serve")
        self.ctx = ctx
        self.token = token or secrets.token_urlsafe(24)
        self._requested = port
        self._port: int | None = None

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
        if self.started:
            raise ServeError("the server is already started")
        error = self._launch()
        if error is not None:
            raise ServeError(f"cannot serve on {HOST}:{self._requested} ({error}); "
                             "pick another --port, or 0 for a free one") from error
        return self

    async def _serve(self, stopping: asyncio.Event) -> None:
        runner = web.AppRunner(make_app(self.ctx, self.token), access_log=None,
                               handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self._requested, reuse_address=False)
            await site.start()
            self._port = runner.addresses[0][1]
            self._bound()
            await stopping.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> ServeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
