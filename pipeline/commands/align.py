"""`stpe align`: pair every captured frame with the game state behind it."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TimeRemainingColumn
from rich.table import Table

from alignment import AlignmentReport, align_external, align_session
from capture import Session
from pipeline._errors import PipelineError
from pipeline.commands._conventions import Output, expand_sessions, session_words


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def print_report(report: AlignmentReport, console: Console) -> None:
    """The alignment summary as a rich table."""
    table = Table(title=f"aligned {report.session}", show_header=False)
    clock = report.clock
    r = report.residual_ms
    rows = [
        ("frames", f"{report.matched}/{report.frames} matched ({100 * report.coverage:.1f} %)"),
        ("methods", ", ".join(f"{k} {v}" for k, v in report.methods.items())),
        ("residual |ms|", f"p50 {_fmt(r['p50'])}  p95 {_fmt(r['p95'])}  max {_fmt(r['max'])}"
                          f"  (tolerance {report.tolerance_ms:g})"),
        ("clock", f"{clock['method']}: drift {_fmt(clock['drift_ppm'], ' ppm', 1)} "
                  f"± {_fmt(clock['drift_std_ppm'], '', 1)}, offset ± "
                  f"{_fmt(clock['offset_std_ms'], ' ms', 3)}, asymmetry bound "
                  f"{_fmt(clock['asymmetry_bound_ms'], ' ms', 3)}, "
                  f"{len(clock['segments'])} segment(s)"),
        ("latency", f"{report.latency_ms:.2f} ms ({report.latency_source})" if
         report.latency_bound_ms is None else f"{report.latency_ms:.2f} ± "
         f"{report.latency_bound_ms:.2f} ms ({report.latency_source})"),
        ("timecode", f"decoded {report.timecode['decoded']}, undecodable "
                     f"{report.timecode['undecodable']}, held past the tolerance "
                     f"{report.timecode['held_frames']}"),
        ("capture", f"{report.frame_size[0]}x{report.frame_size[1]} px, scale "
                    f"{report.capture_scale[0]:.4g}x{report.capture_scale[1]:.4g}, offset "
                    f"{report.capture_offset[0]:g},{report.capture_offset[1]:g}"),
        ("video", f"{_fmt(report.video['fps'], ' fps', 2)}, {report.video['dropped']} dropped, "
                  f"{report.video['gaps']} gaps"),
        ("state", f"{report.state['samples']} samples, {report.state['missing']} missing, "
                  f"{report.state['receiver_gaps']} receiver gaps"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _earlier_timecode_frames(session: Session) -> int:
    """Frames an earlier alignment of `session` matched by the timecode (0 if none)."""
    try:
        report = orjson.loads(session.file("alignment").read_bytes())
        return int(report.get("methods", {}).get("timecode", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def check_alignable(path: Path, overwrite: bool) -> str | None:
    """Refuse a killed session and a clock-only realignment that would replace a timecode
    one; returns a warning for a session whose video is missing."""
    session = Session.open(path)
    if session.manifest.status == "recording":
        raise PipelineError(f"{path} is still marked 'recording': its recorder was killed (or "
                            f"is still running). Recover it first: stpe repair {path}")
    if session.file("video").is_file():
        return None
    earlier = _earlier_timecode_frames(session)
    if earlier and not overwrite:
        raise PipelineError(f"{path} has no video.mkv, so only the clock can match frames; "
                            f"the earlier alignment matched {earlier} frames by their "
                            "timecode. Restore video.mkv, or pass --overwrite to replace it "
                            "with clock-only matching")
    return (f"{path} has no video.mkv: frames are matched by the fitted clock only (no "
            "timecode)")


@click.command("align")
@click.argument("sessions", nargs=-1,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--state", "state_log", type=click.Path(dir_okay=False, path_type=Path),
              help="A state log (JSON lines of samples) to align with --video.")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path),
              help="Any video of the play (OBS, phone) to align with --state.")
@click.option("--video-start-wall", help="Wall-clock time of the video's first frame (ISO 8601 "
              "with a time zone), matched against the samples' wall_ms.")
@click.option("--offset-ms", type=float, help="The video's first frame shows the state this "
              "many ms after the log's first sample.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Session folder to create for --state/--video.")
@click.option("--tolerance-ms", type=float, default=50.0, show_default=True,
              help="Frames farther than this from any sample are left unmatched.")
@click.option("--latency-ms", type=float, help="Display latency (grab time minus render "
              "time); measured from the timecode when omitted.")
@click.option("--no-timecode", is_flag=True, help="Ignore the timecode strip.")
@click.option("--overwrite", is_flag=True, help="Let a clock-only alignment (video.mkv "
              "missing) replace an earlier timecode alignment.")
def command(sessions: tuple[Path, ...], state_log: Path | None, video: Path | None,
            video_start_wall: str | None, offset_ms: float | None, out: Path | None,
            tolerance_ms: float, latency_ms: float | None, no_timecode: bool,
            overwrite: bool) -> None:
    """Align SESSIONS, or build and align a session from --state LOG --video FILE --out DIR.

    Writes aligned.parquet (per frame: match, residual and the state at the frame's
    content time) and alignment.json (the report) into the session."""
    external = (state_log, video, out)
    if sessions and any(v is not None for v in external):
        raise click.UsageError("give SESSIONS, or --state, --video and --out, not both")
    if not sessions and any(v is None for v in external):
        raise click.UsageError("give a SESSION to align, or all of --state, --video and --out")
    sessions = expand_sessions(sessions)
    output = Output.current()
    warnings = {path: check_alignable(path, overwrite) for path in sessions}
    reports = []
    for path in sessions or [None]:
        if warnings.get(path):
            output.warn(warnings[path])
        with output.progress_bar("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("reading the timecode", total=None)

            def progress(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            options = {"tolerance_ms": tolerance_ms, "latency_ms": latency_ms,
                       "use_timecode": not no_timecode, "progress": progress}
            if path is not None:
                report = align_session(path, **options)
            else:
                report = align_external(state_log, video, out,
                                        video_start_wall=video_start_wall,
                                        offset_ms=offset_ms, **options)
        print_report(report, output.console)
        reports.append(report)
    output.result({"command": "align", "sessions": [r.to_dict() for r in reports]})
    output.hint(f"stpe labels {session_words(sessions) if sessions else out}")
