"""`stpe repair`: recover a session in place, whatever its status."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from capture import RepairReport, repair_session
from pipeline.commands._conventions import Output, session_words, sessions_argument


@click.command("repair")
@sessions_argument()
@click.option("--force", is_flag=True,
              help="Repair even if the recorder process that owns the session still runs.")
def command(sessions: list[Path], force: bool) -> None:
    """Recover SESSIONS in place after a crash or a failed write: trim torn log lines,
    remux the readable video, reconcile the frame table, mark them recovered. A complete
    session only has torn log lines moved aside."""
    output = Output.current()
    reports = [_repair(path, force, output.console) for path in sessions]
    output.result({"command": "repair", "sessions": [asdict(r) for r in reports]})
    output.hint(f"stpe align {session_words(sessions)}")


def _repair(session: Path, force: bool, console: Console) -> RepairReport:
    """Repair one session, printing what was found."""
    report = repair_session(session, force=force)
    if report.intact:
        console.print(f"{report.path} is complete and every log line is whole; nothing to "
                      f"do ({report.samples} samples)")
        return report
    if report.already_recovered:
        console.print(f"{report.path} was already recovered; nothing to do "
                      f"({report.frames_decodable} frames, {report.samples} samples)")
        return report
    for name, moved in report.torn_bytes.items():
        console.print(f"{name}: {moved} bytes of torn or corrupt lines kept in {name}.torn")
    for name in report.completed_lines:
        console.print(f"{name}: the last record was whole; its newline was added")
    if report.video == "unchanged":
        console.print("video: unchanged (the session was stopped cleanly)")
    elif report.video == "remuxed":
        console.print(f"video: {report.frames_decodable} frames readable, remuxed into "
                      "video.mkv (original kept as video.damaged.mkv)")
    else:
        console.print(f"video: {report.video}; no frame could be recovered")
    if report.lost_frames:
        first, last = report.lost_frames[0], report.lost_frames[-1]
        console.print(f"frames: {len(report.lost_frames)} frames lost with the video "
                      f"(indices {first}..{last}), their rows kept in frames.lost.jsonl")
    if report.untabled_frames:
        console.print(f"frames: {report.untabled_frames} readable frames have no frame-table "
                      "row (it was cut by the crash) and are ignored")
    console.print(f"state: {report.samples} samples")
    console.print(f"session recovered: {report.path}")
    return report
