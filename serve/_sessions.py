"""Session routes: the list of sessions and one session's summary.

    GET /api/sessions          {"sessions": [summary, ...]} newest first
    GET /api/sessions/{id}     one summary
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from capture._layout import MANIFEST
from serve._context import ServeContext, resolve_session
from serve._summary import summarize


def _list(ctx: ServeContext) -> list[dict[str, Any]]:
    folders = [p for p in ctx.sessions_dir.iterdir()
               if not p.name.startswith(".") and (p / MANIFEST).is_file()]
    summaries = [summarize(p) for p in folders]
    return sorted(summaries, key=lambda s: (-(s.get("created_wall_ns") or 0), s["id"]))


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    async def sessions(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(_list, ctx)
        return web.json_response({"sessions": found})

    async def session(request: web.Request) -> web.Response:
        folder: Path = resolve_session(ctx, request.match_info["id"])
        return web.json_response(await asyncio.to_thread(summarize, folder))

    return [web.get("/api/sessions", sessions), web.get("/api/sessions/{id}", session)]
