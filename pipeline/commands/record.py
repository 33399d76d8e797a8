"""`stpe record`: capture the screen and the plugin's state into a new session."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import click
from rich.live import Live
from rich.text import Text

from capture import DEFAULT_PORT, Recording, RecordingStatus, Region
from capture._layout import MANIFEST
from pipeline._errors import PipelineError
from pipeline.commands._conventions import Output
from pipeline.commands._window import window_region


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


def _line(status: RecordingStatus, width: int = 80) -> Text:
    """The live status: one line that fits 80 columns, cut with … to a narrower `width`."""
    offset = ("no probe yet" if status.clock_offset_ms is None
              else f"{status.clock_offset_ms:+.2f} ms")
    plugin = (f"state {status.samples_per_s:.0f}/s ({status.samples})"
              if status.plugin_connected else "no plugin yet")
    text = Text.assemble(("● REC ", "bold red"), f"{status.elapsed_s:6.1f} s  ",
                         f"{status.fps:4.1f} fps  {status.drops} dropped  ", plugin,
                         f"  clock {offset}")
    if status.failed:
        text = Text.assemble(("● capture failed: ", "bold red"), status.failed)
    text.truncate(width, overflow="ellipsis")
    return text


DEFAULT_PARENT = Path("sessions")
NOT_CONNECTED = (
    "the plugin never connected, so this session has video but no game state. Check, in "
    "Roblox Studio: the STPE plugin is installed (stpe plugin install) and its Record button "
    "was pressed before Play; Studio's prompt to let the plugin reach 127.0.0.1 was allowed; "
    "the plugin posts to {url}{token}; then record again")


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


def _target(out: Path | None) -> tuple[Path, str | None]:
    """(parent, session id): a new path is the session folder itself; an existing folder
    (or the default, sessions/) gets a new, timestamped session inside it."""
    if out is None:
        return DEFAULT_PARENT, None
    if (out / MANIFEST).is_file():
        raise click.BadParameter(f"{out} is already a session; pass a new folder for the "
                                 "session, or a folder to create it in", param_hint="--out")
    if out.is_dir():
        return out, None
    if out.exists():
        raise click.BadParameter(f"{out} is a file; pass a folder", param_hint="--out")
    return out.parent, out.name


@click.command("record")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The session folder to create; an existing folder gets a new, "
                   "timestamped session inside [default: a new one in sessions/].")
@click.option("--fps", type=click.FloatRange(0, 240, min_open=True), default=30.0,
              show_default=True, callback=_finite, help="Screen grabs per second.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              callback=_finite,
              help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
@click.option("--monitor", type=click.IntRange(min=0), default=None,
              help="Monitor to record (1 = first, 0 = all together) [default: 1].")
@click.option("--region", callback=parse_region, metavar="X,Y,W,H",
              help="Record this screen rectangle instead of a monitor.")
@click.option("--window", metavar="TITLE", help="Record the window whose title contains "
              "TITLE (Linux/X11; elsewhere use --region, also the fallback if it is given).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Receiver port on 127.0.0.1 (0 picks a free one).")
@click.option("--token", default=None, help="Shared token the plugin must send.")
@click.option("--encoder", type=click.Choice(["auto", "thread", "process"]), default="auto",
              show_default=True,
              help="Encode video on a thread or in a child process (steadier grabs for large "
                   "frames); auto picks the process from 1920x1080 on.")
def command(out: Path | None, fps: float, duration: float | None, monitor: int | None,
            region: Region | None, window: str | None, port: int, token: str | None,
            encoder: Literal["auto", "thread", "process"]) -> None:
    """Record the screen and the plugin's game state into a new session."""
    if monitor is not None and (region is not None or window is not None):
        other = "--region" if region is not None else "--window"
        raise click.UsageError(f"--monitor and {other} exclude each other; pass one")
    if token == "":
        raise click.BadParameter("the token is empty; omit --token for no token",
                                 param_hint="--token")
    output = Output.current()
    out_console, err_console = output.console, output.progress_console
    if window is not None:
        region = _window_or_region(window, region, output)
    parent, session_id = _target(out)
    recording = Recording(parent, fps=fps, monitor=1 if monitor is None else monitor,
                          region=region, port=port, token=token, encoder=encoder,
                          session_id=session_id)
    with _StopSignal() as stop:
        with _removed_if_left_empty(parent):
            recording.start()
        out_console.print(f"session: {recording.path}")
        out_console.print(f"plugin address: {recording.url}")
        out_console.file.flush()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            with Live(_line(recording.status(), err_console.width), console=err_console,
                      refresh_per_second=4, transient=True) as live:
                while not stop.event.wait(0.25):
                    status = recording.status()
                    live.update(_line(status, err_console.width))
                    if status.failed or (deadline is not None and time.monotonic() >= deadline):
                        break
        finally:
            final = recording.stop()
    out_console.print(f"recorded {final.frames} frames ({final.fps:.1f} fps, "
                      f"{final.drops} dropped) and {final.samples} samples in "
                      f"{final.elapsed_s:.1f} s")
    out_console.print(f"session complete: {final.session}")
    if final.samples == 0:
        output.warn(NOT_CONNECTED.format(url=recording.url,
                                         token=" with the same --token" if token else ""))
    output.result({"command": "record", "session": str(final.session),
                   "frames": final.frames, "fps": final.fps, "drops": final.drops,
                   "samples": final.samples, "elapsed_s": final.elapsed_s,
                   "plugin_connected": final.samples > 0, "url": recording.url})
    output.hint(f"stpe align {final.session}")


def _window_or_region(title: str, region: Region | None, output: Output) -> Region:
    """--window's rectangle; --region instead (with a warning) when it cannot be found."""
    try:
        return window_region(title)
    except PipelineError as exc:
        if region is None:
            raise
        output.warn(f"{exc}; recording --region {region.left},{region.top},"
                    f"{region.width},{region.height}")
        return region


@contextmanager
def _removed_if_left_empty(folder: Path) -> Iterator[None]:
    """A failed start leaves no folder it created: `folder` is removed if it is new and
    still empty when the start fails (Recording removes its own session folder)."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
