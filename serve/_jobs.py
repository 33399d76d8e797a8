"""Job routes: align, labels, annotate and export started from the page, run by the `stpe`
command in a child process (`_runner`), followed live and cancelled.

    GET  /api/jobs               {"jobs": [job, ...]} newest first (survives restarts)
    POST /api/jobs               {kind, sessions, ...options} -> 201 the queued job
    POST /api/jobs/{id}/cancel   the job (its process terminated)
    GET  /api/jobs/events        server-sent events: `jobs` (all, on connect), `job` (one
                                 changed), and a comment every 15 s to keep the stream open

Each request names sessions by id (folders of the sessions folder) and only options the
command has, each checked here and passed as `--option=value`; an export writes its dataset
to `<sessions>/.stpe-serve/exports/<job id>/` and may restrict frames (`--frames`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from capture._guard import RefusedError
from serve._context import ServeContext, not_found, resolve_session
from serve._jobstore import JobRecord
from serve._runner import JobManager, new_job_id
from serve._search import parse_body

HEARTBEAT_S = 15.0
SessionIds = Annotated[list[StrictStr], Field(min_length=1, max_length=64)]
ModelRef = Annotated[StrictStr, Field(min_length=1, max_length=500)]


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sessions: SessionIds


class AlignJob(_Job):
    kind: Literal["align"]
    tolerance_ms: float | None = Field(None, gt=0, le=10_000)
    no_timecode: StrictBool = False
    overwrite: StrictBool = False


class LabelsJob(_Job):
    kind: Literal["labels"]


class AnnotateJob(_Job):
    kind: Literal["annotate"]
    stages: list[Literal["embed", "segment", "caption", "video"]] = Field(
        default_factory=lambda: ["embed", "segment", "caption"], min_length=1, max_length=4)
    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    embed_model: ModelRef | None = None
    segment_model: ModelRef | None = None
    caption_model: ModelRef | None = None
    video_model: ModelRef | None = None


class FrameRanges(BaseModel):
    """Inclusive frame-index ranges of one session (a search selection)."""

    model_config = ConfigDict(extra="forbid")

    session: StrictStr
    ranges: list[tuple[int, int]] = Field(min_length=1, max_length=10_000)


class ExportJob(_Job):
    kind: Literal["export"]
    format: Literal["lerobot", "webdataset", "parquet", "coco"]
    timecode: Literal["mask", "crop", "keep"] = "mask"
    fps_cap: float | None = Field(None, gt=0, le=1000)
    frames: list[FrameRanges] = Field(default_factory=list, max_length=64)


JobRequest = Annotated[AlignJob | LabelsJob | AnnotateJob | ExportJob,
                       Field(discriminator="kind")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: JobRequest


def _options(request: BaseModel, names: tuple[str, ...]) -> list[str]:
    """`--name=value` for each option set (flags: `--name` when true)."""
    out = []
    for name in names:
        value = getattr(request, name)
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value not in (None, False):
            out.append(f"{flag}={value}")
    return out


def _frames_option(request: ExportJob) -> list[str]:
    out = []
    for selection in request.frames:
        if selection.session not in request.sessions:
            raise RefusedError(400, "bad_request", f"frames name {selection.session!r}, which "
                               "is not one of the job's sessions")
        if any(a < 0 or b < a for a, b in selection.ranges):
            raise RefusedError(400, "bad_request", "each frame range is [first, last] with "
                               "0 <= first <= last")
        ranges = ",".join(f"{a}-{b}" for a, b in selection.ranges)
        out.append(f"--frames={selection.session}:{ranges}")
    return out


def _align(request: AlignJob, folders: list[str], out: Path) -> list[str]:
    return ["align", *folders, *_options(request, ("tolerance_ms", "no_timecode", "overwrite"))]


def _labels(request: LabelsJob, folders: list[str], out: Path) -> list[str]:
    return ["labels", *folders]


def _annotate(request: AnnotateJob, folders: list[str], out: Path) -> list[str]:
    return ["annotate", *folders, f"--stages={','.join(request.stages)}",
            *_options(request, ("device", "dtype", "embed_model", "segment_model", "caption_model",
                                "video_model"))]


def _export(request: ExportJob, folders: list[str], out: Path) -> list[str]:
    return ["export", *folders, f"--format={request.format}", f"--out={out}",
            *_options(request, ("timecode", "fps_cap")), *_frames_option(request)]


_COMMANDS: dict[type, Callable[[Any, list[str], Path], list[str]]] = {
    AlignJob: _align, LabelsJob: _labels, AnnotateJob: _annotate, ExportJob: _export}


def command_line(ctx: ServeContext, request: _Job, out: Path) -> tuple[list[str], str]:
    """The `stpe` arguments of a job request (an export writes to `out`) and its title."""
    folders = [str(resolve_session(ctx, sid)) for sid in request.sessions]
    names = ", ".join(request.sessions[:3]) + (" ..." if len(request.sessions) > 3 else "")
    argv = _COMMANDS[type(request)](request, folders, out)
    title = f"{argv[0]} {names}" + (f" as {request.format}"
                                    if isinstance(request, ExportJob) else "")
    return argv, title


def _discard_partial_export(job: JobRecord) -> None:
    """After a failed or cancelled export: its dataset folder and temporary folder go."""
    if job.state == "done" or job.output is None:
        return
    out = Path(job.output)
    for path in [out, *out.parent.glob(f".{out.name}.tmp-*")]:
        shutil.rmtree(path, ignore_errors=True)


def manager_of(ctx: ServeContext) -> JobManager:
    """The job manager of a server's context (one per context, made on first use)."""
    found = _MANAGERS.get(ctx)
    if found is None:
        found = _MANAGERS[ctx] = JobManager(ctx)
    return found


_MANAGERS: dict[ServeContext, JobManager] = {}


async def on_shutdown(ctx: ServeContext) -> None:
    """When the server stops: end the event streams (or the server would wait for them)
    and terminate the running jobs."""
    manager = _MANAGERS.pop(ctx, None)
    if manager is not None:
        await manager.close()


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def routes(ctx: ServeContext) -> list[web.RouteDef]:
    manager_of(ctx)  # reads the stored jobs now, marking the interrupted ones

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"jobs": manager_of(ctx).listing()})

    async def start(request: web.Request) -> web.Response:
        body = await parse_body(request, _Request)
        job_id = new_job_id()
        out = ctx.work_dir / "exports" / job_id
        argv, title = await asyncio.to_thread(command_line, ctx, body.job, out)
        export = isinstance(body.job, ExportJob)
        job = await manager_of(ctx).submit(
            body.job.kind, title, argv, job_id=job_id, sessions=body.job.sessions,
            output=str(out) if export else None,
            after=_discard_partial_export if export else None)
        return web.json_response(job.public(), status=201)

    async def cancel(request: web.Request) -> web.Response:
        manager = manager_of(ctx)
        job_id = request.match_info["id"]
        if job_id not in manager.jobs:
            raise not_found(f"no job {job_id!r}; see /api/jobs")
        return web.json_response((await manager.cancel(job_id)).public())

    async def events(request: web.Request) -> web.StreamResponse:
        manager = manager_of(ctx)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        queue = manager.subscribe()
        try:
            await response.write(_event("jobs", manager.listing()))
            while True:
                try:
                    job = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if job is None:  # the server stops
                    break
                await response.write(_event("job", job))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            manager.unsubscribe(queue)
        return response

    return [web.get("/api/jobs", listing), web.post("/api/jobs", start),
            web.post("/api/jobs/{id}/cancel", cancel), web.get("/api/jobs/events", events)]
