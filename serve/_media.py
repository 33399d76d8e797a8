"""Media routes: the session video in a container the browser plays, with HTTP Range.

    GET /api/sessions/{id}/video   {"url", "start_us"}: makes the MP4 if needed
    GET /media/{id}/video          video/mp4, Range requests answered (206)

A session stores H.264 in Matroska (capture/_layout.py), which browsers do not reliably
play. The first request remuxes it, without re-encoding, into MP4 under the server's work
folder (`.stpe-serve/media/<id>/`), reused while the session's video is unchanged. The MP4
starts at time 0: frame i is shown from (pts_us[i] - start_us) / 1e6 s, `start_us` being
the first packet's pts (`/api/sessions/{id}/video` gives it).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import av
from aiohttp import web

from capture._guard import RefusedError
from capture._layout import VIDEO
from serve._context import ServeContext, resolve_session, session_file

PLAYABLE = "video.mp4"


def _key(source: Path) -> str:
    stat = source.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def remux_mp4(source: Path, target: Path) -> int:
    """Copy the video stream of `source` into MP4 at `target`, shifted to start at 0;
    returns the shift (the first packet's pts) in microseconds. Written to a temporary
    file and renamed, so a failure leaves no partial MP4."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with av.open(str(source)) as src:
            stream = src.streams.video[0]
            tb = stream.time_base
            with av.open(str(tmp), "w", format="mp4",
                         options={"movflags": "+faststart"}) as out:
                copy = out.add_stream_from_template(stream)
                first: int | None = None
                for packet in src.demux(stream):
                    if packet.pts is None or packet.dts is None:
                        continue
                    if first is None:
                        first = packet.dts
                    packet.pts -= first
                    packet.dts -= first
                    packet.stream = copy
                    out.mux(packet)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return round((first or 0) * tb * 1_000_000)


class PlayableVideos:
    """The MP4 of each session's video, made once per version of the video."""

    def __init__(self, ctx: ServeContext) -> None:
        self._root = ctx.work_dir / "media"
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, folder: Path) -> tuple[Path, int]:
        """(mp4 path, start_us) for the session at `folder`; a 404 without a video."""
        source = session_file(folder, VIDEO)
        lock = self._locks.setdefault(folder.name, asyncio.Lock())
        async with lock:
            out = self._root / folder.name
            key = _key(source)
            target, marker = out / PLAYABLE, out / f"{key}.start_us"
            if target.is_file() and marker.is_file():
                return target, int(marker.read_text())
            try:
                start = await asyncio.to_thread(self._make, source, out, target, marker)
            except (av.FFmpegError, IndexError) as exc:
                raise RefusedError(422, "video_unreadable",
                                   f"the session video cannot be read ({exc}); run "
                                   f"stpe repair on the session") from None
            return target, start

    @staticmethod
    def _make(source: Path, out: Path, target: Path, marker: Path) -> int:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.start_us"):
            old.unlink()
        start = remux_mp4(source, target)
        marker.write_text(str(start))
        return start


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    videos = PlayableVideos(ctx)

    async def video(request: web.Request) -> web.StreamResponse:
        folder = resolve_session(ctx, request.match_info["id"])
        path, _ = await videos.get(folder)
        return web.FileResponse(path, headers={"Content-Type": "video/mp4",
                                               "Cache-Control": "no-cache"})

    async def info(request: web.Request) -> web.Response:
        folder = resolve_session(ctx, request.match_info["id"])
        _, start = await videos.get(folder)
        return web.json_response({"url": f"/media/{folder.name}/video", "start_us": start})

    return [web.get("/api/sessions/{id}/video", info), web.get("/media/{id}/video", video)]
