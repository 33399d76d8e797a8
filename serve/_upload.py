"""Import routes: a video plus a state log (`stpe align --state --video --out`), or a seed
prototype zip (`stpe import`), uploaded and then turned into a new session by a job.

    POST /api/uploads   multipart/form-data, text fields first:
                          kind=video: name, [offset_ms | video_start_wall], files
                                      `state` (JSON lines of samples) and `video`
                          kind=seed:  name, file `seed` (a zip)
                        -> 201 the import job (`_jobs`), creating <sessions>/<name>

Files are streamed to `<work_dir>/uploads/<job id>/` under fixed names (the client's file
names are never used), with the CLI's own bounds: a state log line at most
`alignment._external.MAX_LINE_BYTES`, a zip at most `ZipLimits.total_bytes`, and no file
larger than that either. The first bytes must look like the declared type. Any refusal is
a 4xx JSON error and removes the staging folder; the folder also goes once the job ends.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from alignment._external import MAX_LINE_BYTES
from alignment._seed_source import ZipLimits
from capture._guard import RefusedError
from serve._context import ServeContext
from serve._jobs import manager_of
from serve._runner import new_job_id

MAX_FILE_BYTES = ZipLimits().total_bytes
CHUNK = 1 << 20
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VIDEO_EXT = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"}
FILES = {"video": ("state", "video"), "seed": ("seed",)}
WHAT = {"video": "a video", "seed": "a zip", "state": "a JSON-lines state log"}


def _video_magic(head: bytes) -> bool:
    return (head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM (EBML)
            or head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")  # MP4 / QuickTime
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI "))


def _looks_like(field: str, head: bytes) -> bool:
    if field == "video":
        return _video_magic(head)
    if field == "seed":
        return head.startswith(b"PK\x03\x04")
    return head.lstrip()[:1] == b"{"  # state: JSON lines of objects


def refuse(status: int, code: str, message: str) -> RefusedError:
    return RefusedError(status, code, message)


async def _stream(part: BodyPartReader, field: str, target: Path) -> int:
    """Copy one file part to `target`, checking its type, its size and (state logs) its
    line lengths as it arrives; returns the bytes written."""
    written, line = 0, 0
    with await asyncio.to_thread(open, target, "wb") as f:
        while chunk := await part.read_chunk(CHUNK):
            if written == 0 and not _looks_like(field, chunk[:64]):
                raise refuse(415, "wrong_type", f"{field}: the file does not look like "
                             f"{WHAT[field]}")
            written += len(chunk)
            if written > MAX_FILE_BYTES:
                raise refuse(413, "too_large", f"{field}: over {MAX_FILE_BYTES} bytes, the "
                             "most an import takes")
            if field == "state":
                pieces = chunk.split(b"\n")
                longest = max([line + len(pieces[0]), *(len(p) + 1 for p in pieces[1:])])
                line = line + len(pieces[0]) if len(pieces) == 1 else len(pieces[-1])
                if longest > MAX_LINE_BYTES:
                    raise refuse(413, "too_large", f"state: a line over {MAX_LINE_BYTES} bytes; "
                                 "expected one sample per line")
            await asyncio.to_thread(f.write, chunk)
    if written == 0:
        raise refuse(400, "bad_request", f"{field}: the file is empty")
    return written


async def _receive(request: web.Request, staging: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """The text fields and the staged files of the multipart body."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:  # aiohttp's refusals of the header
        raise refuse(400, "bad_request", f"expected multipart/form-data ({exc})") from None
    fields: dict[str, str] = {}
    files: dict[str, Path] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise refuse(400, "bad_request", "every part needs a name; nested multipart is "
                         "not taken")
        allowed = FILES.get(fields.get("kind", ""), ())
        if part.filename is None:
            if part.name not in ("kind", "name", "offset_ms", "video_start_wall") or \
                    part.name in fields:
                raise refuse(400, "bad_request", f"unexpected field {part.name!r}")
            value = await part.read(decode=False)
            if len(value) > 200:
                raise refuse(400, "bad_request", f"{part.name}: over 200 bytes")
            fields[part.name] = value.decode("utf-8", "replace")
        elif part.name in allowed and part.name not in files:
            suffix = Path(part.filename).suffix.lower() if part.name == "video" else ""
            name = f"{part.name}{suffix if suffix in VIDEO_EXT else ''}"
            name = {"state": "state.jsonl", "seed": "seed.zip"}.get(part.name, name)
            files[part.name] = staging / name
            await _stream(part, part.name, files[part.name])
        else:
            raise refuse(400, "bad_request", f"unexpected file {part.name!r}; kind "
                         f"{fields.get('kind')!r} takes {', '.join(allowed) or 'none'} (send "
                         "the text fields first)")
    return fields, files


def _argv(ctx: ServeContext, fields: dict[str, str], files: dict[str, Path]) -> list[str]:
    kind, name = fields.get("kind"), fields.get("name", "")
    if kind not in FILES:
        raise refuse(400, "bad_request", "kind must be 'video' (with state and video files) "
                     "or 'seed' (a zip)")
    if not NAME.match(name):
        raise refuse(400, "bad_request", f"name {name!r} is not a session folder name: 1-64 "
                     "letters, digits, '.', '_' or '-', starting with a letter or digit")
    out = ctx.sessions_dir / name
    if out.exists():
        raise refuse(409, "exists", f"a session named {name!r} already exists; choose another "
                     "name")
    missing = [f for f in FILES[kind] if f not in files]
    if missing:
        raise refuse(400, "bad_request", f"missing file(s): {', '.join(missing)}")
    if kind == "seed":
        return ["import", str(files["seed"]), f"--out={out}"]
    argv = ["align", f"--state={files['state']}", f"--video={files['video']}", f"--out={out}"]
    if fields.get("offset_ms"):
        try:
            argv.append(f"--offset-ms={float(fields['offset_ms'])!r}")
        except ValueError:
            raise refuse(400, "bad_request", "offset_ms must be a number") from None
    if fields.get("video_start_wall"):
        argv.append(f"--video-start-wall={fields['video_start_wall']}")
    return argv


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    async def upload(request: web.Request) -> web.Response:
        job_id = new_job_id()
        staging = ctx.work_dir / "uploads" / job_id
        await asyncio.to_thread(staging.mkdir, parents=True)
        try:
            fields, files = await _receive(request, staging)
            argv = await asyncio.to_thread(_argv, ctx, fields, files)
        except BaseException:  # refused, truncated or dropped: nothing is kept
            await asyncio.to_thread(shutil.rmtree, staging, True)
            raise

        def cleanup(job: Any) -> None:
            shutil.rmtree(staging, ignore_errors=True)

        job = await manager_of(ctx).submit("import", f"import {fields['name']}", argv,
                                           job_id=job_id, output=fields["name"], after=cleanup)
        return web.json_response(job.public(), status=201)

    return [web.post("/api/uploads", upload)]
