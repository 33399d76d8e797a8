"""Run `stpe` as a user does: in a pseudo-terminal 80 columns wide, or piped; and read
what a person would see on that terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COLUMNS = 80
# CSI (colours, cursor moves), OSC (titles, links) and lone escapes
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


@dataclass(frozen=True)
class Screen:
    code: int
    text: str  # escapes removed; each carriage-return rewrite kept as its own line
    stdout: str | None = None  # what went to stdout when it was piped (`pipe_stdout`)

    @property
    def lines(self) -> list[str]:
        return [part for line in self.text.split("\n") for part in line.split("\r")]

    @property
    def flat(self) -> str:
        return " ".join(self.text.split())


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"TERM": "xterm-256color", "PYTHONPATH": str(Path(__file__).parents[2])})
    env.update(extra or {})
    return env


def in_terminal(*args: object, env: dict[str, str] | None = None, prelude: str = "",
                timeout: float = 240.0, interrupt_when: Callable[[str], bool] | None = None,
                pipe_stdout: bool = False) -> Screen:
    """`stpe ARGS` with stdin, stdout and stderr on an 80x24 pseudo-terminal. `prelude`
    is Python run first in the same process (to hide an installed module). With
    `interrupt_when`, Ctrl-C (SIGINT) is sent once it is true of the output so far. With
    `pipe_stdout`, stdout goes to a file instead (`| tee`): the screen shows stderr only."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    code = f"{prelude}\nfrom pipeline.cli import main\nmain()"
    out = tempfile.TemporaryFile() if pipe_stdout else None  # noqa: SIM115 (closed below)
    process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=child,
                               stdout=out or child, stderr=child, env=_env(env),
                               close_fds=True)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the child closed its side
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
            if interrupt_when is not None and interrupt_when(b"".join(chunks).decode(
                    errors="replace")):
                process.send_signal(signal.SIGINT)
                interrupt_when = None
        code_ = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        process.kill()
        process.wait()
        os.close(main)
    stdout = None
    if out is not None:
        out.seek(0)
        stdout = out.read().decode(errors="replace")
        out.close()
    raw = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return Screen(code_, _ESCAPES.sub("", raw), stdout)


def piped(*args: object, env: dict[str, str] | None = None,
          prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`stpe ARGS` with stdout and stderr captured (pipes, as a script runs it)."""
    code = f"{prelude}\nfrom pipeline.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=240, env=_env(env), stdin=subprocess.DEVNULL)
