"""`stpe demo` as a library call: play the demo game in a window while recording it with the
receiver, the screen recorder and the simulated plugin, then align, label, export, render,
and check everything against the game's own log.

```
<out>/
  sessions/<id>/    the recorded session (with aligned.parquet, labels.parquet)
  truth.jsonl       what the game showed and when (host_mono ns), per frame
  check.json        the alignment and labels compared with truth.jsonl and the video
  lerobot/          LeRobot v3.0 export
  webdataset/       WebDataset shards
  overlay.mp4       the overlay video
```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline._errors import PipelineError
from pipeline.demo._display import VirtualDisplay
from pipeline.demo._game_process import launch_command
from pipeline.demo._player import DEFAULT_LATENCY_S, DEFAULT_VIEWPORT, ShownFrame
from pipeline.demo._truth import CHECK, TRUTH, TruthCheck, check_truth, read_truth

logger = logging.getLogger(__name__)

CLOCK_OFFSET_S = 1000.0  # the simulated plugin's os.clock() = host seconds + this
EXPORTS = ("lerobot", "webdataset")
# what a demo run writes: a folder holding only these is a previous run's, safe to refresh
DEMO_OUTPUTS = frozenset({"sessions", TRUTH, CHECK, *EXPORTS, "overlay.mp4"})


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    seconds: float = 10.0
    fps: float = 30.0
    viewport: tuple[int, int] = DEFAULT_VIEWPORT
    latency_s: float = DEFAULT_LATENCY_S
    clock_offset_s: float = CLOCK_OFFSET_S
    render_hz: float = 30.0  # game frames per second (physics runs at 60 Hz regardless)


@dataclass(frozen=True)
class DemoResult:
    session: Path
    truth: Path
    frames: int
    fps: float
    drops: int
    samples: int
    alignment: dict[str, Any]
    check: TruthCheck
    label_events: dict[str, int]
    exports: dict[str, Path]
    overlay: Path


def _validate(options: DemoOptions) -> None:
    if not 0 < options.seconds <= 3600:
        raise PipelineError(f"--seconds must be in (0, 3600], got {options.seconds}")
    if not 1 <= options.fps <= 120:
        raise PipelineError(f"--fps must be between 1 and 120, got {options.fps}")
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{out} is a file; choose a folder for --out")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_OUTPUTS) \
        if out.is_dir() else []
    if foreign:
        raise PipelineError(f"{out} holds files the demo did not write ({', '.join(foreign)}); "
                            "choose a new --out or remove them")


def _read_message(process: subprocess.Popen) -> dict:
    line = process.stdout.readline()
    if not line:
        code = process.wait()
        raise PipelineError(f"the demo game exited early (status {code}); run `stpe -vv demo` "
                            "to see its output")
    return json.loads(line)


def record_demo(options: DemoOptions) -> tuple[Path, Any, list[ShownFrame]]:
    """Play and record the demo; the session folder, the final recording status and the
    game's log. Starts Xvfb when there is no display; stops everything it started."""
    from capture import Region
    from capture._recording import Recording

    width, height = options.viewport
    truth = Path(options.out) / TRUTH
    config = {"viewport": list(options.viewport), "latency_s": options.latency_s,
              "render_hz": options.render_hz,
              "seconds": options.seconds, "clock_offset_s": options.clock_offset_s,
              "truth": str(truth)}
    with VirtualDisplay(max(1024, width + 64), max(768, height + 64)), \
            subprocess.Popen(launch_command(config), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ)) as game:
        try:
            region = Region.model_validate(_read_message(game)["region"])
            recording = Recording(Path(options.out) / "sessions", fps=options.fps,
                                  region=region, port=0)
            with recording:
                game.stdin.write(json.dumps({"url": recording.url}) + "\n")
                game.stdin.flush()
                _read_message(game)
                game.wait(timeout=30)
            status = recording.stop()
        finally:
            if game.poll() is None:
                game.terminate()
                try:
                    game.wait(5)
                except subprocess.TimeoutExpired:
                    game.kill()
    return recording.path, status, read_truth(truth)


def run_demo(options: DemoOptions, *,
             on_stage: Callable[[str], None] | None = None) -> DemoResult:
    """Record, align, label, export and render the demo; see the module docstring."""
    from alignment import align_session, read_aligned
    from capture import Session
    from pipeline.export import export_sessions
    from pipeline.labels import compute_labels, write_labels
    from pipeline.overlay import render_overlay

    _validate(options)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)

    def stage(name: str) -> None:
        logger.info("demo: %s", name)
        if on_stage is not None:
            on_stage(name)

    stage(f"playing and recording {options.seconds:g} s")
    path, status, shown = record_demo(options)
    truth = out / TRUTH
    stage("aligning")
    report = align_session(path)
    stage("labelling")
    session = Session.open(path)
    labels = compute_labels(session)
    write_labels(session, labels)
    check = check_truth(session, read_aligned(session), labels.table, shown)
    (out / CHECK).write_text(json.dumps(check.__dict__, indent=2) + "\n")
    exports = {}
    for fmt in EXPORTS:
        stage(f"exporting {fmt}")
        target = out / fmt
        shutil.rmtree(target, ignore_errors=True)
        export_sessions([path], fmt, target)
        exports[fmt] = target
    stage("rendering the overlay")
    overlay = render_overlay(path, out / "overlay.mp4").path
    events: dict[str, int] = {}
    for event in labels.events:
        events[event["kind"]] = events.get(event["kind"], 0) + 1
    return DemoResult(session=path, truth=truth, frames=status.frames, fps=status.fps,
                      drops=status.drops, samples=status.samples,
                      alignment=report.__dict__, check=check, label_events=events,
                      exports=exports, overlay=overlay)
