"""Session routes: the list, one session's summary, and what the player reads.

    GET /api/sessions                           {"sessions": [summary, ...]} newest first
    GET /api/sessions/{id}                      summary + "frames" (labelled frame range)
    GET /api/sessions/{id}/labels?start=&count= rows of frames [start, start + count)
    GET /api/sessions/{id}/events               label events (jump, land, turn, press...)
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from capture import Session
from capture._guard import RefusedError
from capture._layout import LABELS
from pipeline._errors import PipelineError
from pipeline.labels import read_label_events
from serve._context import ServeContext, resolve_session
from serve._frames import MAX_COUNT, frame_extent, frame_window
from serve._jobstore import exports_by_session
from serve._summary import summarize


def _list(ctx: ServeContext) -> list[dict[str, Any]]:
    """Every session the id routes would serve (links out of the folder are left out)."""
    folders = []
    for child in ctx.sessions_dir.iterdir():
        try:
            folders.append(resolve_session(ctx, child.name))
        except RefusedError:
            continue
    exports = exports_by_session(ctx.work_dir)
    summaries = [{**summarize(p), "exports": exports.get(p.name, [])} for p in folders]
    return sorted(summaries, key=lambda s: (-(s.get("created_wall_ns") or 0), s["id"]))


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise RefusedError(400, "bad_query", f"{name}={raw!r} is not a whole number of at "
                           "most 12 digits")
    return int(raw)


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    async def sessions(request: web.Request) -> web.Response:
        return web.json_response({"sessions": await asyncio.to_thread(_list, ctx)})

    def _detail(folder: Any) -> dict[str, Any]:
        summary = summarize(folder)
        summary["exports"] = exports_by_session(ctx.work_dir).get(folder.name, [])
        summary["frames"] = frame_extent(folder) if (folder / LABELS).is_file() else None
        return summary

    async def session(request: web.Request) -> web.Response:
        folder = resolve_session(ctx, request.match_info["id"])
        return web.json_response(await asyncio.to_thread(_detail, folder))

    async def labels(request: web.Request) -> web.Response:
        folder = resolve_session(ctx, request.match_info["id"])
        start, count = _int(request, "start", 0), _int(request, "count", 100)
        if count > MAX_COUNT:
            raise RefusedError(400, "bad_window", f"count={count} is over {MAX_COUNT}; ask "
                               "for fewer frames at a time")
        window = await asyncio.to_thread(frame_window, folder, start, count)
        return web.json_response(window, dumps=_dumps)

    async def events(request: web.Request) -> web.Response:
        folder = resolve_session(ctx, request.match_info["id"])

        def read() -> list[dict[str, Any]]:
            try:
                return read_label_events(Session.open(folder))
            except PipelineError as exc:
                raise RefusedError(422, "events_unreadable", str(exc)) from None

        return web.json_response({"events": await asyncio.to_thread(read)})

    return [web.get("/api/sessions", sessions), web.get("/api/sessions/{id}", session),
            web.get("/api/sessions/{id}/labels", labels),
            web.get("/api/sessions/{id}/events", events)]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
