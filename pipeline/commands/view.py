"""`stpe view SESSION... [--out FILE.rrd]`: sessions in Rerun (the `view` extra)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from pipeline._errors import PipelineError
from pipeline.commands._conventions import Output, one_session, sessions_argument


@click.command("view")
@sessions_argument()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write this .rrd file instead of opening the viewer (one session).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              hidden=True, help="Old name of --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def command(sessions: list[Path], out: Path | None, save: Path | None, overwrite: bool) -> None:
    """Show SESSIONS in Rerun: video on the posed camera, 3D boxes, trajectory, plots,
    events. Without --out each session opens in a viewer window."""
    from pipeline.viewer import display_problem, open_viewer, save_recording

    if save is not None and out is not None:
        raise click.UsageError("--save is the old name of --out; pass only --out")
    out = out or save
    if out is not None:
        one_session(sessions, "--out")
        if out.exists() and not overwrite:
            raise click.UsageError(f"{out} exists; pass --overwrite to replace it")
    elif (problem := display_problem()) is not None:
        raise PipelineError(problem)
    output = Output.current()
    results = []
    for session in sessions:
        target = out or Path(tempfile.mkdtemp(prefix="stpe-view-")) / f"{session.name}.rrd"
        with output.progress_console.status(f"logging {session.name} to Rerun"):
            result = save_recording(session, target)
        pid = None if out is not None else open_viewer(target)
        where = f"saved to {target}" if pid is None else f"opened in the viewer ({target})"
        output.console.print(f"{session}: {result.frames} frames, {result.images} images, "
                             f"{result.events} events {where}")
        results.append({"session": str(session), "frames": result.frames,
                         "images": result.images, "events": result.events,
                         "rrd": str(target), "viewer_pid": pid})
    output.result({"command": "view", "sessions": results})
