"""The web application of `stpe serve`: the routes of every feature module behind one guard.

The guard is the receiver's boundary applied to a browser app. Every request must name this
server in Host (127.0.0.1:PORT or localhost:PORT, against DNS rebinding); a request carrying
an Origin must come from that same origin (no other site may drive it); `/api/*` and
`/media/*` need the per-start token, from the HttpOnly cookie that opening the printed URL
(`/?token=...`) sets, or from an `X-STPE-Token` header. Refusals are JSON `ErrorReply`s.
"""

from __future__ import annotations

import hmac
import importlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from capture._guard import ALLOWED_HOSTS, TOKEN_HEADER, RefusedError, _host_name
from capture._wire import ErrorBody, ErrorReply
from serve._context import ServeContext

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "stpe_token"
GUARDED = ("/api/", "/media/")
# Each module has `routes(ctx) -> list[web.RouteDef]`; a new feature adds its name here.
FEATURES = ("_sessions", "_media", "_search", "_jobs", "_upload")

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: blob:; "
                                "media-src 'self' blob:; frame-ancestors 'none'"),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, path: str | None = None
                   ) -> web.Response:
    """A JSON `ErrorReply`, the shape the receiver answers refusals with."""
    body = ErrorReply(error=ErrorBody(code=code, message=message, path=path))
    return web.Response(body=body.model_dump_json().encode(), status=status,
                        content_type="application/json")


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if sockname else None


def _check_origin(request: web.Request) -> None:
    """Host names this server (name and port); an Origin, if any, is this server's."""
    port = _local_port(request)
    host = request.headers.get("Host", "")
    name = _host_name(host).lower()
    if name not in ALLOWED_HOSTS or host.lower() != f"{name}:{port}":
        raise RefusedError(403, "host_refused",
                           f"Host {host!r} is refused; open http://127.0.0.1:{port}/ (or "
                           f"localhost:{port}), the address stpe serve printed")
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in {f"http://{h}:{port}" for h in ALLOWED_HOSTS}:
        raise RefusedError(403, "origin_refused",
                           f"Origin {origin!r} is refused; only pages served by this "
                           f"server (http://127.0.0.1:{port}) may call it")
    site = request.headers.get("Sec-Fetch-Site", "none")
    if site not in ("none", "same-origin"):
        raise RefusedError(403, "origin_refused",
                           f"a {site} request is refused; only pages served by this server "
                           "may call it")


def _same(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode())


def _check_token(request: web.Request, token: str) -> None:
    if _same(request.headers.get(TOKEN_HEADER), token) or _same(request.cookies.get(COOKIE),
                                                                token):
        return
    state = "wrong" if request.headers.get(TOKEN_HEADER) or request.cookies.get(COOKIE) \
        else "missing"
    raise RefusedError(403, "token_refused",
                       f"the access token is {state}; open the URL stpe serve printed "
                       f"(it ends in ?token=...), or send the {TOKEN_HEADER} header")


def _guard(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        guarded = request.path.startswith(GUARDED)
        try:
            _check_origin(request)
            if guarded:
                _check_token(request, token)
            return await handler(request)
        except RefusedError as exc:
            return error_response(exc.status, exc.code, str(exc), exc.path)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = (exc.reason or "error").lower().replace(" ", "_")
            return error_response(exc.status, code, f"{request.path}: {exc.reason}")
    return guard


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)


def _index(token: str) -> Handler:
    async def index(request: web.Request) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not _same(given, token):
                raise RefusedError(403, "token_refused",
                                   "the token in the URL is wrong (stpe serve makes a new one "
                                   "each start); open the URL it printed last")
            found = web.HTTPSeeOther("/")
            found.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            raise found
        response = web.FileResponse(STATIC_DIR / "index.html")
        response.headers["Cache-Control"] = "no-store"
        return response
    return index


def make_app(ctx: ServeContext, token: str) -> web.Application:
    """The application: `/` (the page), `/static/*`, and every feature module's routes."""
    if not (token and token.isascii() and token.isprintable()):
        raise ValueError("the token must be a non-empty string of printable ASCII")
    app = web.Application(middlewares=[_guard(token)], client_max_size=1024 ** 2)
    app.on_response_prepare.append(_secure_headers)
    app.router.add_get("/", _index(token))
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    for name in FEATURES:
        module = importlib.import_module(f"serve.{name}")
        app.router.add_routes(module.routes(ctx))
        if hasattr(module, "on_shutdown"):  # a feature with work to stop when the server does
            app.on_shutdown.append(lambda app, stop=module.on_shutdown: stop(ctx))
    return app
