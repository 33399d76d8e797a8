"""`stpe render SESSION [--out FILE]`: the overlay video of a labelled session."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from pipeline.overlay import render_overlay


@click.command("render")
@click.argument("session", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .mp4 (default: SESSION/overlay.mp4).")
def command(session: Path, out: Path | None) -> None:
    """Render SESSION's video with its labels drawn on every frame."""
    console = Console()
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("rendering", total=None)
        result = render_overlay(session, out,
                                progress=lambda done, total: bar.update(task, completed=done,
                                                                        total=total))
    console.print(f"overlay: {result.frames} frames -> {result.path}")
