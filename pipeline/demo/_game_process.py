"""The demo game as its own process, like Roblox Studio beside the recorder.

The parent starts it with `launch_command()`; it opens the window and prints its screen
region as one JSON line, waits for the receiver's address on stdin, plays while its
simulated plugin posts every sample to the receiver over HTTP, writes the game's log
(truth.jsonl) and prints a last JSON line. Its own process keeps the game's timing free
of the recorder's threads, and it loads OpenCV's Qt before PyAV (in the other order the
window never opens: both bundle an X client library).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# OpenCV first: the command below imports cv2 before anything imports av.
_LAUNCH = "import cv2; from pipeline.demo._game_process import main; main()"


def launch_command(config: dict) -> list[str]:
    """The argv that starts the game process with `config` (see `main`)."""
    return [sys.executable, "-c", _LAUNCH, json.dumps(config)]


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    """config: viewport [w, h], latency_s, render_hz, seconds, clock_offset_s, truth (path)."""
    from capture._simplugin import SimulatedPlugin
    from pipeline.demo._display import GameWindow
    from pipeline.demo._player import DemoGame
    from pipeline.demo._truth import write_truth

    config = json.loads(sys.argv[1])
    viewport = tuple(config["viewport"])
    with GameWindow(viewport) as window:
        region = window.region()
        _say({"region": region.model_dump()})
        line = sys.stdin.readline()
        if not line.strip():
            return  # the parent gave up before starting
        url = json.loads(line)["url"]
        game = DemoGame(viewport=viewport, latency_s=config["latency_s"],
                        render_hz=config["render_hz"])
        with SimulatedPlugin(url, clock_offset_s=config["clock_offset_s"]) as plugin:
            shown = game.play(config["seconds"], show=window.show, submit=plugin.submit,
                              clock=plugin.clock.at)
    write_truth(Path(config["truth"]), shown)
    _say({"frames": len(shown)})
