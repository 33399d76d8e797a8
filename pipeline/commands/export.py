"""`stpe export SESSION... --format F --out DIR`: write a dataset from labelled sessions."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

from pipeline.commands._conventions import Output, replacing, sessions_argument
from pipeline.export import EXPORTERS, ExportOptions, export_sessions
from pipeline.export._splits import parse_splits
from pipeline.export._storage import is_url


def _frame_ranges(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                  ) -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
    """`NAME:0-99,200-299` -> (("NAME", ((0, 99), (200, 299))),), each NAME once."""
    out: dict[str, tuple[tuple[int, int], ...]] = {}
    for value in values:
        name, _, text = value.rpartition(":")
        try:
            ranges = tuple((int(a), int(b)) for a, _, b in
                           (part.strip().partition("-") for part in text.split(",")))
        except ValueError:
            ranges = ()
        if not name or not ranges or any(a < 0 or b < a for a, b in ranges):
            raise click.BadParameter(f"{value!r} is not NAME:FIRST-LAST[,FIRST-LAST...] with "
                                     "0 <= FIRST <= LAST", param=param)
        if name in out:
            raise click.BadParameter(f"session {name!r} is given twice", param=param)
        out[name] = ranges
    return tuple(out.items())


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
@click.option("--frames", "frame_ranges", multiple=True, callback=_frame_ranges,
              metavar="NAME:A-B[,C-D]",
              help="Export only these frames (inclusive frame-index ranges) of the session "
                   "folder NAME; repeat per session. Sessions not named export every frame.")
@click.option("--license", "license_id", default="other", show_default=True,
              help="License id written into the dataset card.")
def command(sessions: list[Path], fmt: str, out: str, timecode: str,
            shard_size: float, fps_cap: float | None, overwrite: bool, gop: int, splits: str,
            seed: int, frame_ranges: tuple[tuple[str, tuple[tuple[int, int], ...]], ...],
            license_id: str) -> None:
    """Export labelled SESSIONS (after `stpe labels`) as a dataset folder."""
    output = Output.current()
    unknown = sorted({n for n, _ in frame_ranges} - {p.name for p in sessions})
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} is not one of the SESSIONS' folder "
                                 "names", param_hint="--frames")
    with replacing(None if is_url(out) else Path(out), overwrite), output.progress_bar(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn()) as bar:
        task = bar.add_task(f"exporting {len(sessions)} session(s) as {fmt}", total=None)
        counts = export_sessions(
            list(sessions), fmt, out if is_url(out) else Path(out),
            ExportOptions(timecode=timecode, shard_mb=shard_size, fps_cap=fps_cap, gop=gop,
                          splits=parse_splits(splits), seed=seed, license=license_id,
                          frames=frame_ranges),
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    output.console.print(f"wrote {out} ({fmt}): {summary}")
    output.result({"command": "export", "format": fmt, "out": str(out),
                   "sessions": [str(p) for p in sessions], "counts": counts})
