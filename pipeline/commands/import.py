# ruff: noqa: N999  (the module is named after its command, `stpe import`)
"""`stpe import SRC --out DIR`: the seed prototype's per-frame layout -> an aligned session."""

from __future__ import annotations

from pathlib import Path

import click

from alignment import import_seed
from pipeline.commands._conventions import Output
from pipeline.commands.align import print_report


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Session folder to create.")
def command(source: Path, out: Path) -> None:
    """Import SOURCE (a folder or zip of frame_NNNN/ folders, each with frame_NNNN.png and
    frame_NNNN.json) as a session at --out, aligned by the records' own timestamps."""
    output = Output.current()
    console = output.console
    result = import_seed(source, out)
    console.print(f"imported {result.frames} frames ({result.frame_size[0]}x"
                  f"{result.frame_size[1]} px) into {result.session}")
    if result.viewport and result.viewport != result.frame_size:
        console.print(f"viewport {result.viewport[0]:g}x{result.viewport[1]:g} differs from "
                      "the frame size: both are recorded")
    if result.missing_frames:
        count = sum(last - first + 1 for first, last in result.missing_frames)
        runs = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in result.missing_frames[:10])
        console.print(f"[yellow]gap:[/yellow] {count} frame numbers missing ({runs})")
    for jump in result.timestamp_gaps[:10]:
        console.print(f"[yellow]gap:[/yellow] {jump['gap_s']:.3f} s after frame "
                      f"{jump['after_frame']:g}")
    print_report(result.report, console)
    output.result({"command": "import", "session": str(result.session),
                   "frames": result.frames, "frame_size": list(result.frame_size),
                   "missing_frames": list(result.missing_frames),
                   "timestamp_gaps": list(result.timestamp_gaps),
                   "alignment": result.report.to_dict()})
    output.hint(f"stpe labels {result.session}")
