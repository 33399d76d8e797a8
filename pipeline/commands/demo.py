"""`stpe demo`: play the built-in game, record it, align, label, export and render it."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from pipeline.commands._conventions import Output
from pipeline.demo import DemoOptions, DemoResult, run_demo


def _summary(result: DemoResult, seconds: float, fps: float) -> Table:
    check, report = result.check, result.alignment
    table = Table(title="stpe demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("frames", f"{result.frames} captured at {result.fps:.1f} fps "
                  f"(target {fps:g}, {result.fps / fps:.0%}), "
                  f"{result.drops} dropped")
    table.add_row("state", f"{result.samples} samples")
    methods = ", ".join(f"{k} {v}" for k, v in sorted(report["methods"].items()))
    table.add_row("alignment", f"{report['matched']}/{report['frames']} frames matched "
                  f"({methods}); latency {report['latency_ms']:.1f} "
                  f"± {report['latency_bound_ms'] or 0:.1f} ms measured "
                  f"({report['latency_source']}); the game shows each frame "
                  f"{check.latency_true_ms:.1f} ms after its state, the window system adds "
                  f"its own delay")
    table.add_row("vs truth", f"timecode: {check.timecode_correct}/{check.timecode_frames} "
                  f"frames decoded to a sample that was on screen; all methods: "
                  f"{check.seq_correct}/{check.seq_checked}")
    error = ("-" if check.root_px_error_max is None
             else f"{check.root_px_error_max:.3f} px max over {check.root_px_checked} frames")
    table.add_row("root pixel", f"labels vs the marker the game drew, found in the video: "
                  f"{error}")
    events = ", ".join(f"{k} {v}" for k, v in sorted(result.label_events.items())) or "none"
    table.add_row("label events", events)
    table.add_row("session", str(result.session))
    table.add_row("truth", str(result.truth))
    for name, path in result.exports.items():
        table.add_row(name, str(path))
    table.add_row("overlay", str(result.overlay))
    return table


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: ./stpe-demo-<time>).")
@click.option("--seconds", type=float, default=10.0, show_default=True,
              help="How long to play.")
@click.option("--fps", type=float, default=30.0, show_default=True,
              help="Screen recording rate.")
def command(out: Path | None, seconds: float, fps: float) -> None:
    """Play the built-in game in a window (on Xvfb if there is no display), record it with
    its state, then align, label, export (LeRobot, WebDataset) and render an overlay."""
    output = Output.current()
    out = out or Path(time.strftime("stpe-demo-%Y%m%d-%H%M%S"))
    with output.progress_console.status("starting") as status:
        result = run_demo(DemoOptions(out=out, seconds=seconds, fps=fps),
                          on_stage=lambda name: status.update(name))
    output.console.print(_summary(result, seconds, fps))
    output.result({"command": "demo", **asdict(result)})
    output.hint(f"stpe view {result.session} (needs the view extra), or open "
                f"{result.overlay}")
