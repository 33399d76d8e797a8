"""`stpe export SESSION... --format F --out DIR`: write a dataset from labelled sessions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from pipeline.commands._conventions import Output, replacing, sessions_argument
from pipeline.export import EXPORTERS, ExportOptions, export_sessions
from pipeline.export._splits import parse_splits
from pipeline.export._storage import is_url


@click.command("export")
@sessions_argument()
@click.option("--format", "fmt", required=True, type=click.Choice(sorted(EXPORTERS)),
              help="Dataset format.")
@click.option("--out", required=True,
              help="The dataset folder to write (new or empty, or see --overwrite), or an "
                   "fsspec URL (s3://bucket/prefix, gs://...) with no objects under it.")
@click.option("--timecode", type=click.Choice(["mask", "crop", "keep"]), default="mask",
              show_default=True, help="Paint black, crop away or keep the timecode strip.")
@click.option("--shard-size", type=click.FloatRange(min=0, min_open=True), default=256.0,
              show_default=True, help="Maximum shard / file size in MB.")
@click.option("--fps-cap", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Keep at most this many frames per second.")
@click.option("--overwrite", is_flag=True, help="Replace an existing local --out dataset.")
@click.option("--gop", type=click.IntRange(min=1), default=2, show_default=True,
              help="LeRobot: keyframe interval in frames.")
@click.option("--split", "splits", default="train=1", show_default=True,
              help="Splits by session, e.g. train=0.8,val=0.1,test=0.1.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the session-to-split draw.")
@click.option("--license", "license_id", default="other", show_default=True,
              help="License id written into the dataset card.")
def command(sessions: list[Path], fmt: str, out: str, timecode: str,
            shard_size: float, fps_cap: float | None, overwrite: bool, gop: int, splits: str,
            seed: int, license_id: str) -> None:
    """Export labelled SESSIONS (after `stpe labels`) as a dataset folder."""
    output = Output.current()
    with replacing(None if is_url(out) else Path(out), overwrite), Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=output.progress_console, transient=True) as bar:
        task = bar.add_task(f"exporting {len(sessions)} session(s) as {fmt}", total=None)
        counts = export_sessions(
            list(sessions), fmt, out if is_url(out) else Path(out),
            ExportOptions(timecode=timecode, shard_mb=shard_size, fps_cap=fps_cap, gop=gop,
                          splits=parse_splits(splits), seed=seed, license=license_id),
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    output.console.print(f"wrote {out} ({fmt}): {summary}")
    output.result({"command": "export", "format": fmt, "out": str(out),
                   "sessions": [str(p) for p in sessions], "counts": counts})
