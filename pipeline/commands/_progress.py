"""Machine-readable progress: with `STPE_PROGRESS=json` in the environment, a command's
progress bars print JSON lines on stderr instead of drawing, for programs that run `stpe`
as a child process (`stpe serve`'s jobs) and show its progress themselves:

    {"progress": {"task": "exporting 2 session(s) as lerobot", "completed": 40, "total": 120}}

`total` is null while unknown. Lines come at most every 0.2 s per task, and always when a
task completes."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import orjson
from rich.progress import Progress, TaskID

ENV = "STPE_PROGRESS"
EVERY_S = 0.2


def json_progress_wanted() -> bool:
    """Whether the environment asks for JSON-lines progress."""
    return os.environ.get(ENV, "").strip().lower() == "json"


class JsonLinesProgress(Progress):
    """A rich Progress that draws nothing and reports each update as a JSON line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last: dict[TaskID, float] = {}

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        task = self._tasks[task_id]
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        if not done and now - self._last.get(task_id, -EVERY_S) < EVERY_S:
            return
        self._last[task_id] = now
        line = {"progress": {"task": task.description, "completed": task.completed,
                             "total": task.total}}
        sys.stderr.write(orjson.dumps(line).decode() + "\n")
        sys.stderr.flush()
