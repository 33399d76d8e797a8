"""`stpe record`: capture the screen and the plugin's state into a new session."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Literal

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from capture import DEFAULT_PORT, Recording, RecordingStatus, Region


def parse_region(ctx: click.Context, param: click.Parameter, value: str | None) -> Region | None:
    """`x,y,w,h` in screen pixels -> Region."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        x, y, w, h = (int(p.strip()) for p in parts)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not x,y,w,h (four integers, e.g. "
                                 "0,0,1280,720)") from None
    if w <= 0 or h <= 0:
        raise click.BadParameter(f"width and height must be positive, got {w}x{h}")
    return Region(left=x, top=y, width=w, height=h)


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _line(status: RecordingStatus) -> Text:
    offset = ("waiting for a probe" if status.clock_offset_ms is None
              else f"{status.clock_offset_ms:+.3f} ms")
    plugin = "connected" if status.plugin_connected else "not connected"
    text = Text.assemble(
        ("● REC ", "bold red"), f"{status.elapsed_s:7.1f} s  ",
        f"{status.fps:5.1f} fps  drops {status.drops}  ",
        f"state {status.samples_per_s:5.1f}/s ({status.samples} samples, plugin {plugin})  ",
        f"clock offset {offset}")
    if status.failed:
        text.append(f"  capture failed: {status.failed}", style="red")
    return text


class _StopSignal:
    """Turns Ctrl-C and SIGTERM into an event while installed; restores the old handlers."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@click.command("record")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sessions"), show_default=True,
              help="Folder the new session is created in.")
@click.option("--fps", type=click.FloatRange(0, 240, min_open=True), default=30.0,
              show_default=True, callback=_finite, help="Screen grabs per second.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              callback=_finite,
              help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
@click.option("--monitor", type=click.IntRange(min=0), default=None,
              help="Monitor to record (1 = first, 0 = all together) [default: 1].")
@click.option("--region", callback=parse_region, metavar="X,Y,W,H",
              help="Record this screen rectangle instead of a monitor.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Receiver port on 127.0.0.1 (0 picks a free one).")
@click.option("--token", default=None, help="Shared token the plugin must send.")
@click.option("--encoder", type=click.Choice(["auto", "thread", "process"]), default="auto",
              show_default=True,
              help="Encode video on a thread or in a child process (steadier grabs for large "
                   "frames); auto picks the process from 1920x1080 on.")
def command(out: Path, fps: float, duration: float | None, monitor: int | None,
            region: Region | None, port: int, token: str | None,
            encoder: Literal["auto", "thread", "process"]) -> None:
    """Record the screen and the plugin's game state into a new session."""
    if monitor is not None and region is not None:
        raise click.UsageError("--monitor and --region exclude each other; pass one")
    if token == "":
        raise click.BadParameter("the token is empty; omit --token for no token",
                                 param_hint="--token")
    out_console = Console(highlight=False, soft_wrap=True)
    err_console = Console(stderr=True, highlight=False)
    recording = Recording(out, fps=fps, monitor=1 if monitor is None else monitor,
                          region=region, port=port, token=token, encoder=encoder)
    with _StopSignal() as stop:
        recording.start()
        out_console.print(f"session: {recording.path}")
        out_console.print(f"plugin address: {recording.url}")
        out_console.file.flush()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            with Live(_line(recording.status()), console=err_console,
                      refresh_per_second=4, transient=False) as live:
                while not stop.event.wait(0.25):
                    status = recording.status()
                    live.update(_line(status))
                    if status.failed or (deadline is not None and time.monotonic() >= deadline):
                        break
        finally:
            final = recording.stop()
    out_console.print(f"recorded {final.frames} frames ({final.fps:.1f} fps, "
                      f"{final.drops} dropped) and {final.samples} samples in "
                      f"{final.elapsed_s:.1f} s")
    out_console.print(f"session complete: {final.session}")
