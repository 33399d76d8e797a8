"""`stpe render SESSION... [--out FILE]`: the overlay video of labelled sessions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from pipeline.commands._conventions import Output, one_session, replacing, sessions_argument
from pipeline.overlay import render_overlay


@click.command("render")
@sessions_argument()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .mp4 for one session (default: SESSION/overlay.mp4).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def command(sessions: list[Path], out: Path | None, overwrite: bool) -> None:
    """Render each SESSION's video with its labels drawn on every frame."""
    output = Output.current()
    if out is not None:
        one_session(sessions, "--out")
    results = []
    for session in sessions:
        with replacing(out, overwrite), Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=output.progress_console, transient=True) as bar:
            task = bar.add_task(f"rendering {session.name}", total=None)

            def progress(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            result = render_overlay(session, out, progress=progress)
        output.console.print(f"overlay: {result.frames} frames -> {result.path}")
        results.append({"session": str(session), "frames": result.frames,
                        "path": str(result.path)})
    output.result({"command": "render", "sessions": results})
