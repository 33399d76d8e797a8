"""`stpe labels SESSION...`: exact labels from the aligned state."""

from __future__ import annotations

from pathlib import Path

import click

from capture import Session
from pipeline.commands._conventions import Output, session_words, sessions_argument
from pipeline.labels import compute_labels, write_labels


@click.command("labels")
@sessions_argument()
def command(sessions: list[Path]) -> None:
    """Write labels.parquet and label_events.jsonl for each SESSION (after `stpe align`)."""
    out = Output.current()
    console = out.console
    results = []
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
            out.warn(f"captured aspect differs from the viewport's by "
                     f"{100 * s['capture_aspect_mismatch']:.1f} %")
        console.print(f"  wrote {table_path.name}, {events_path.name}")
        results.append({"session": str(path), "events": len(labels.events),
                        "files": [str(table_path), str(events_path)], "summary": s})
    out.result({"command": "labels", "sessions": results})
    named = session_words(sessions)
    out.hint(f"stpe export {named} --format lerobot --out DATASET; to look first: "
             f"stpe render {named} or stpe view {named}")
