"""Jobs run the `stpe` command itself in a child process (`python -m pipeline --json ...`),
one at a time, so the page does exactly what the CLI does.

Progress comes from the command's JSON progress lines (STPE_PROGRESS=json, see
pipeline/commands/_progress.py), the result from its `--json` document, and a failure
from its `error:` line and exit code. Cancelling terminates the process
(`Process.terminate`: SIGTERM on POSIX, TerminateProcess on Windows). Every change is saved
to the job's record (`_jobstore`) in a worker thread and sent to every subscriber (the
server-sent events of `_jobs`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.commands._progress import ENV as PROGRESS_ENV
from serve._context import ServeContext
from serve._jobstore import FINISHED, LOG_LINES, JobRecord, Kind, Progress, load_all, save

logger = logging.getLogger(__name__)

SAVE_EVERY_S = 1.0
QUEUE = 1000  # job changes held for one event stream


def new_job_id() -> str:
    """A job id that sorts by creation time and is safe as a file name."""
    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:8]


class JobManager:
    """The jobs of one server: stored ones read back at start, new ones run in order."""

    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx
        self.jobs: dict[str, JobRecord] = {j.id: j for j in load_all(ctx.work_dir)}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._after: dict[str, Callable[[JobRecord], None]] = {}
        self._cancelled: set[str] = set()
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._slot: asyncio.Lock | None = None
        self._saved_at: dict[str, float] = {}

    def listing(self) -> list[dict[str, Any]]:
        """Every job, newest first, as the page receives them."""
        return [j.public() for j in sorted(self.jobs.values(),
                                           key=lambda j: (-j.created_ns, j.id))]

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of job changes (None: the stream ends)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)

    async def _update(self, job_id: str, *, force: bool = True, **changes: Any) -> JobRecord:
        job = self.jobs[job_id].model_copy(update=changes)
        self.jobs[job_id] = job
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE - 1:  # a stalled page: dropped (it reconnects)
                self._subscribers.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(job.public())
        now = time.monotonic()
        if force or now - self._saved_at.get(job_id, 0.0) >= SAVE_EVERY_S:
            self._saved_at[job_id] = now
            await asyncio.to_thread(save, self.ctx.work_dir, job)
        return job

    async def submit(self, kind: Kind, title: str, argv: list[str], *, job_id: str | None = None,
                     sessions: list[str] | None = None, output: str | None = None,
                     after: Callable[[JobRecord], None] | None = None) -> JobRecord:
        """Queue `stpe <argv>` as a job; `after(job)` runs in a worker thread once it ended
        (whatever the outcome), e.g. to delete an upload's staging folder."""
        job = JobRecord(id=job_id or new_job_id(), kind=kind,
                        title=title, argv=argv, sessions=sessions or [], output=output)
        self.jobs[job.id] = job
        if after is not None:
            self._after[job.id] = after
        await self._update(job.id)
        self._tasks[job.id] = asyncio.create_task(self._run(job.id))
        return job

    async def cancel(self, job_id: str) -> JobRecord:
        """Stop a job: a queued one never starts, a running one's process is terminated."""
        job = self.jobs[job_id]
        if job.state in FINISHED:
            return job
        self._cancelled.add(job_id)
        process = self._processes.get(job_id)
        if process is not None and process.returncode is None:
            process.terminate()
        elif job.state == "queued":
            job = await self._update(job_id, state="cancelled", finished_ns=time.time_ns())
        return job

    async def _run(self, job_id: str) -> None:
        if self._slot is None:
            self._slot = asyncio.Lock()
        ending: dict[str, Any] = {}
        try:
            async with self._slot:
                if job_id not in self._cancelled:
                    ending = await self._execute(job_id)
        except Exception as exc:  # a job must end in a state, whatever failed here
            logger.exception("job %s failed to run", job_id)
            ending = {"state": "failed", "finished_ns": time.time_ns(),
                      "error": f"the job could not run: {exc}"}
        finally:
            # clean up first, so that a page told the job ended finds it cleaned up
            after = self._after.pop(job_id, None)
            if after is not None:
                await asyncio.to_thread(after, self.jobs[job_id].model_copy(update=ending))
            if ending:
                await self._update(job_id, **ending)
            self._tasks.pop(job_id, None)

    async def _execute(self, job_id: str) -> dict[str, Any]:
        """Run the job's command; returns the changes that end its record."""
        env = {**os.environ, PROGRESS_ENV: "json", "PYTHONUNBUFFERED": "1"}
        argv = self.jobs[job_id].argv
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline", "--json", *argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            limit=2 ** 20)
        self._processes[job_id] = process
        await self._update(job_id, state="running", started_ns=time.time_ns())
        if job_id in self._cancelled:
            process.terminate()
        stdout_task = asyncio.create_task(process.stdout.read())  # type: ignore[union-attr]
        log: list[str] = []
        error: str | None = None
        async for raw in process.stderr:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace").rstrip()
            progress = _progress(line)
            if progress is not None:
                await self._update(job_id, force=False, progress=progress)
                continue
            if line.startswith("error:"):
                error = line.removeprefix("error:").strip()
            if line.strip():
                log = [*log, line][-LOG_LINES:]
                await self._update(job_id, force=False, log=log)
        code = await process.wait()
        document = _document(await stdout_task)
        self._processes.pop(job_id, None)
        if job_id in self._cancelled:
            state, error = "cancelled", None
        else:
            state = "done" if code == 0 else "failed"
            if code != 0:
                error = document.get("error") or error or f"the command exited with {code}"
        return {"state": state, "exit_code": code, "finished_ns": time.time_ns(),
                "error": error, "result": None if "error" in document else document,
                "log": log}

    async def close(self) -> None:
        """End every subscriber's stream and terminate the running jobs' processes (the
        server stops)."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)  # room is kept for it: see _update
        self._subscribers.clear()
        for job_id, process in list(self._processes.items()):
            if process.returncode is None:
                self._cancelled.add(job_id)
                process.terminate()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=10)


def _progress(line: str) -> Progress | None:
    if not line.startswith('{"progress"'):
        return None
    try:
        return Progress.model_validate(orjson.loads(line)["progress"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _document(stdout: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(stdout)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
