"""Search routes: frames across sessions by state, by caption text and by example frame,
each result with a thumbnail.

    GET  /api/search/fields              {"fields": [{name, kind, unit, doc, ops}]}
    POST /api/search/state               {where: [{field, op, value}], limit, offset}
    POST /api/search/caption             {text, limit, offset}
    POST /api/search/similar             {session, frame, limit}
    GET  /media/{id}/thumbs/{frame}.jpg  a JPEG of that frame (cached in the work folder)

Answers are `{"total", "results": [{session, frame, t, thumb, ...}]}`. A filter naming an
unknown field, an operator its type refuses or a value of the wrong type is a 400 JSON
error; DuckDB and the decoder run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from capture._guard import RefusedError
from capture._layout import MANIFEST
from serve._context import ServeContext, resolve_session
from serve._filters import OPS, FilterError, StateFilter
from serve._query import Page, label_files, search_captions, search_state, searchable_fields
from serve._similar import NoEmbeddingsError, similar_frames
from serve._thumbs import ThumbnailError, thumbnail


class CaptionQuery(BaseModel):
    """The body of a caption search."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=200)
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=100_000_000)


class ExampleQuery(BaseModel):
    """The body of a search by example frame."""

    model_config = ConfigDict(extra="forbid")

    session: StrictStr = Field(min_length=1, max_length=255)
    frame: StrictInt = Field(ge=0)
    limit: int = Field(50, ge=1, le=500)


def session_folders(ctx: ServeContext) -> dict[str, Path]:
    """{id: folder} of the sessions directly inside the sessions folder."""
    return {p.name: p for p in sorted(ctx.sessions_dir.iterdir())
            if not p.name.startswith(".") and (p / MANIFEST).is_file()}


def thumb_url(session: str, frame: int) -> str:
    return f"/media/{quote(session, safe='')}/thumbs/{frame}.jpg"


def _page_json(page: Page) -> dict[str, Any]:
    results = []
    for hit in page.hits:
        item: dict[str, Any] = {"session": hit.session, "frame": hit.frame, "t": hit.t,
                                "thumb": thumb_url(hit.session, hit.frame)}
        if hit.source:
            item |= {"caption": hit.caption, "source": hit.source}
        results.append(item)
    return {"total": page.total, "results": results}


M = TypeVar("M", bound=BaseModel)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`; a 400 RefusedError naming the first problem."""
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise RefusedError(400, "bad_request", f"{where}: {first['msg']} "
                           f"({exc.error_count()} problem(s) in the request body)") from None


def _fields(ctx: ServeContext) -> list[dict[str, Any]]:
    fields = searchable_fields(label_files(session_folders(ctx)))
    return [{"name": s.name, "kind": s.kind, "unit": s.unit, "doc": s.doc,
             "ops": list(OPS[s.kind])} for s in sorted(fields.values(), key=lambda s: s.name)]


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    async def run(fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except FilterError as exc:
            raise RefusedError(400, "bad_filter", str(exc)) from None

    async def fields(request: web.Request) -> web.Response:
        return web.json_response({"fields": await run(_fields, ctx)})

    async def state(request: web.Request) -> web.Response:
        query = await parse_body(request, StateFilter)
        sessions = await run(session_folders, ctx)
        return web.json_response(_page_json(await run(search_state, sessions, query)))

    async def caption(request: web.Request) -> web.Response:
        query = await parse_body(request, CaptionQuery)
        sessions = await run(session_folders, ctx)
        page = await run(search_captions, sessions, query.text, query.limit, query.offset)
        return web.json_response(_page_json(page))

    async def similar(request: web.Request) -> web.Response:
        query = await parse_body(request, ExampleQuery)
        resolve_session(ctx, query.session)
        sessions = await run(session_folders, ctx)
        try:
            found = await run(similar_frames, sessions, (query.session, query.frame),
                              query.limit)
        except NoEmbeddingsError as exc:
            return web.json_response({"total": 0, "results": [], "message": str(exc)})
        return web.json_response({"total": len(found), "results": [
            {"session": s.session, "frame": s.frame, "score": s.score,
             "thumb": thumb_url(s.session, s.frame)} for s in found]})

    async def thumb(request: web.Request) -> web.StreamResponse:
        folder = resolve_session(ctx, request.match_info["id"])
        text = request.match_info["frame"]
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise RefusedError(404, "not_found", f"{text!r} is not a frame number")
        try:
            path = await asyncio.to_thread(thumbnail, folder, folder.name, int(text),
                                           ctx.work_dir)
        except ThumbnailError as exc:
            raise RefusedError(404, "not_found", str(exc)) from None
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg",
                                               "Cache-Control": "private, max-age=3600"})

    return [web.get("/api/search/fields", fields), web.post("/api/search/state", state),
            web.post("/api/search/caption", caption), web.post("/api/search/similar", similar),
            web.get(r"/media/{id}/thumbs/{frame}.jpg", thumb)]
