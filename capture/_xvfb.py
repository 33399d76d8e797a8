"""A virtual X screen (Xvfb) for recording where there is no display: CI, servers, the demo.

Xvfb picks a free display number itself (`-displayfd`), so parallel runs never collide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from capture._errors import RecorderError


@dataclass(frozen=True)
class Xvfb:
    """A running Xvfb server; `stop()` is safe to call twice."""

    process: subprocess.Popen
    display: str
    width: int
    height: int

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_xvfb(width: int, height: int) -> Xvfb:
    """Start Xvfb with one `width` x `height` x 24 screen on a display number it picks."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RecorderError("Xvfb is not installed; install it with `make system` "
                            "(apt-get install xvfb) or record on a real display")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        process.kill()
        process.wait()
        raise RecorderError("Xvfb exited before reporting its display number; run "
                            "`Xvfb -displayfd 1` by hand to see why")
    return Xvfb(process, f":{number}", width, height)
