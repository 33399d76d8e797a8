"""`stpe export SESSION... --format F --out DIR`: write a dataset from labelled sessions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from pipeline.commands._conventions import Output, replacing, sessions_argument
from pipeline.export import EXPORTERS, ExportOptions, export_sessions


@click.command("export")
@sessions_argument()
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(EXPORTERS)),
              help="Dataset format.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The dataset folder to write (new or empty, or see --overwrite).")
@click.option("--timecode", type=click.Choice(["keep", "mask", "crop"]), default="keep",
              show_default=True, help="Keep, paint black or crop away the timecode strip.")
@click.option("--shard-size", type=click.FloatRange(min=0, min_open=True), default=256.0,
              show_default=True, help="Maximum shard / file size in MB.")
@click.option("--fps-cap", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Keep at most this many frames per second.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out dataset.")
def command(sessions: list[Path], fmt: str, out: Path, timecode: str,
            shard_size: float, fps_cap: float | None, overwrite: bool) -> None:
    """Export labelled SESSIONS (after `stpe labels`) as a dataset folder."""
    output = Output.current()
    with replacing(out, overwrite), Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=output.progress_console, transient=True) as bar:
        task = bar.add_task(f"exporting {len(sessions)} session(s) as {fmt}", total=None)
        counts = export_sessions(
            list(sessions), fmt, out,
            ExportOptions(timecode=timecode, shard_mb=shard_size, fps_cap=fps_cap),
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    output.console.print(f"wrote {out} ({fmt}): {summary}")
    output.result({"command": "export", "format": fmt, "out": str(out),
                   "sessions": [str(p) for p in sessions], "counts": counts})
