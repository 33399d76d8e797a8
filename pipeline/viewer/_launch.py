"""Open a saved .rrd in the Rerun viewer, failing fast where no window can open.

The viewer is its own program (`rerun`, installed with the `view` extra next to Python's
executable): it is found there even when the virtual environment is not activated, started
detached, and watched for a few seconds so that a viewer that cannot open a window (no X
server, no GPU driver) is reported instead of leaving `stpe view` waiting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline._errors import MissingExtraError, PipelineError

STARTUP_S = 3.0  # a viewer that cannot open its window exits well within this


def display_problem() -> str | None:
    """Why no window can open here, or None. Windows and macOS always have a desktop."""
    if sys.platform in ("win32", "darwin"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("there is no display to open the Rerun viewer on (DISPLAY and WAYLAND_DISPLAY "
            "are unset); write a file with --out FILE.rrd and open it on a machine with a "
            "display: rerun FILE.rrd")


def viewer_executable() -> Path:
    """The `rerun` program beside this Python (an unactivated venv), else on PATH."""
    name = "rerun.exe" if sys.platform == "win32" else "rerun"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which("rerun")
    if found is None:
        raise MissingExtraError("the Rerun viewer (rerun)", "view")
    return Path(found)


def open_viewer(rrd: Path, startup_s: float = STARTUP_S) -> int:
    """Start the viewer on `rrd`, detached; returns its pid. Raises if it exits at once."""
    problem = display_problem()
    if problem is not None:
        raise PipelineError(problem)
    detach = ({"start_new_session": True} if os.name == "posix" else
              {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([str(viewer_executable()), str(rrd)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, **detach)
        try:
            code = process.wait(timeout=startup_s)
        except subprocess.TimeoutExpired:
            return process.pid
        log.seek(0)
        text = log.read().decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines
    reason = errors[-1].rsplit(": ", 1)[-1].strip() if errors else "no message"
    raise PipelineError(f"the Rerun viewer exited at once (code {code}): {reason[:200]}; "
                        f"the recording is at {rrd} (open it with: rerun {rrd})")
