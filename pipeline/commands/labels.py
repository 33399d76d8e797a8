"""`stpe labels SESSION`: exact labels from the aligned state."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from capture import Session
from pipeline.labels import compute_labels, write_labels


@click.command("labels")
@click.argument("sessions", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
def command(sessions: tuple[Path, ...]) -> None:
    """Write labels.parquet and label_events.jsonl for each SESSION (after `stpe align`)."""
    console = Console()
    for path in sessions:
        session = Session.open(path)
        labels = compute_labels(session)
        table_path, events_path = write_labels(session, labels)
        s = labels.summary
        err = s["root_px_error"]
        error = (f"root px error mean {err['mean']:.3f} / max {err['max']:.3f} px"
                 if err["frames"] else "no engine projection to check against")
        console.print(f"{path}: {s['frames']} frames ({s['frames_with_state']} with state), "
                      f"{len(labels.events)} events, {error}")
        if s["capture_aspect_mismatch"] > 0.01:
            console.print(f"[yellow]warning:[/yellow] captured aspect differs from the "
                          f"viewport's by {100 * s['capture_aspect_mismatch']:.1f} %")
        console.print(f"  wrote {table_path.name}, {events_path.name}")
