"""The record of a job, kept as `<work_dir>/jobs/<id>.json` so that jobs survive a page
reload and a server restart (a job that was running when its server died reads back as
"interrupted": its process is no longer watched).

```
<sessions>/.stpe-serve/jobs/
  <id>.json     JobRecord, rewritten atomically (temp file + rename) on every change
```
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.labels import write_atomic

logger = logging.getLogger(__name__)

JOB_SCHEMA = "stpe.serve.job/1"
Kind = Literal["align", "labels", "annotate", "export", "import"]
State = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
FINISHED: tuple[State, ...] = ("done", "failed", "cancelled", "interrupted")
LOG_LINES = 40


class Progress(BaseModel):
    """The last progress line of the job's command."""

    task: str = ""
    completed: float = 0
    total: float | None = None


class JobRecord(BaseModel):
    """One job: what runs (the `stpe` arguments), where it is, and how it ended."""

    model_config = ConfigDict(extra="ignore")

    schema_: str = Field(JOB_SCHEMA, alias="schema")
    id: str
    kind: Kind
    title: str
    argv: list[str]  # the arguments after `stpe`
    sessions: list[str] = []
    state: State = "queued"
    created_ns: int = Field(default_factory=time.time_ns)
    started_ns: int | None = None
    finished_ns: int | None = None
    progress: Progress | None = None
    exit_code: int | None = None
    error: str | None = None  # the command's error line, as the CLI prints it
    result: dict[str, Any] | None = None  # the command's --json document
    log: list[str] = []  # the last lines the command wrote to stderr
    output: str | None = None  # what the job creates: a dataset folder or a session id

    def public(self) -> dict[str, Any]:
        """The JSON the page receives."""
        return self.model_dump(mode="json", by_alias=True)


def jobs_dir(work_dir: Path) -> Path:
    return work_dir / "jobs"


def save(work_dir: Path, job: JobRecord) -> None:
    """Write the record atomically (blocking: call it from a worker thread)."""
    folder = jobs_dir(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{job.id}.json", job.model_dump_json(by_alias=True).encode())


def load_all(work_dir: Path) -> list[JobRecord]:
    """Every stored job, oldest first; a job left queued or running by a server that is
    gone is marked interrupted (and saved so). Unreadable records are skipped, logged."""
    jobs = []
    for path in sorted(jobs_dir(work_dir).glob("*.json")):
        try:
            job = JobRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            logger.warning("skipping the job record %s: %s", path, exc)
            continue
        if job.state not in FINISHED:
            job = job.model_copy(update={
                "state": "interrupted", "finished_ns": time.time_ns(),
                "error": "the server stopped while this job ran; start it again"})
            save(work_dir, job)
        jobs.append(job)
    return sorted(jobs, key=lambda j: (j.created_ns, j.id))


def exports_by_session(work_dir: Path) -> dict[str, list[str]]:
    """For each session, the datasets exported from it by finished export jobs (named
    "<format> <job id>"), read without touching the records (a running server's jobs are
    left as they are)."""
    found: dict[str, list[str]] = {}
    for path in sorted(jobs_dir(work_dir).glob("*.json")):
        try:
            job = JobRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            continue  # load_all logs it
        if job.kind != "export" or job.state != "done":
            continue
        fmt = next((a.split("=", 1)[1] for a in job.argv if a.startswith("--format=")), "")
        for session in job.sessions:
            found.setdefault(session, []).append(f"{fmt} {job.id}".strip())
    return found
