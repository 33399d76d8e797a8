"""`stpe view SESSION [--save FILE.rrd]`: the session in Rerun (pip install 'stpe[view]')."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from pipeline.viewer import view_session


@click.command("view")
@click.argument("session", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a .rrd file instead of opening the viewer.")
def command(session: Path, save: Path | None) -> None:
    """Show SESSION in Rerun: video on the posed camera, 3D boxes, trajectory, plots, events."""
    console = Console()
    with console.status("logging to Rerun"):
        result = view_session(session, save=save)
    where = f"saved to {result.saved_to}" if result.saved_to else "sent to the viewer"
    console.print(f"{result.frames} frames, {result.images} images, {result.events} events "
                  f"{where}")
