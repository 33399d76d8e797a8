"""The demo game in a real window on Xvfb: frames reach the screen after the known latency,
each carrying the timecode of the sample submitted for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import mss
import numpy as np
import pytest

from alignment._timecode_code import COLUMNS, DEFAULT_CELL, cells_to_payload
from capture._wire import Sample
from pipeline.demo import DemoGame, GameWindow, ShownFrame, VirtualDisplay, visible_seqs

pytestmark = [pytest.mark.x11,
              pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")]
VIEWPORT = (320, 180)


def _decode(image: np.ndarray) -> int | None:
    cell = DEFAULT_CELL
    row_y = image.shape[0] - 2 * cell + cell // 2
    middle = [image[row_y, c * cell + cell // 2, 0] > 127 for c in range(1, COLUMNS - 1)]
    return cells_to_payload(np.array(middle, int))


def test_virtual_display_sets_and_restores_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with VirtualDisplay(400, 300) as display:
        assert os.environ["DISPLAY"] == display.display
        assert display.display.startswith(":")
    assert "DISPLAY" not in os.environ


def _play_in_a_window() -> None:
    """Run in a fresh interpreter that loaded cv2 before av (see pipeline.demo._game_process):
    play one second in a window, grab the screen after a few shows, print the results."""
    samples, grabs = [], []
    with GameWindow(VIEWPORT) as window, mss.MSS() as screen:
        region = window.region()
        box = {"left": region.left, "top": region.top, "width": region.width,
               "height": region.height}

        def show(image):
            window.show(image)
            if len(grabs) < 8:  # grab right after a few shows: what the recorder would see
                start = time.perf_counter_ns()
                pixels = np.array(screen.grab(box))[..., :3]
                grabs.append((start, time.perf_counter_ns(), _decode(pixels)))

        game = DemoGame(viewport=VIEWPORT, latency_s=0.03)
        shown = game.play(1.0, show=show, submit=samples.append,
                          clock=lambda ns: 50.0 + ns / 1e9)
    print(json.dumps({"region": [region.width, region.height], "samples": samples,
                      "shown": [f.__dict__ for f in shown], "grabs": grabs}))


def _run_on_xvfb(monkeypatch, function: str):
    """Run this module's `function` in a fresh interpreter that loads cv2 before av, on its
    own Xvfb; what it printed last, as JSON."""
    monkeypatch.delenv("DISPLAY", raising=False)
    with VirtualDisplay(640, 480):
        run = subprocess.run([sys.executable, "-c", "import cv2; from tests.pipeline.demo."
                              f"test_player import {function} as f; f()"],
                             capture_output=True, text=True, timeout=60, check=True)
    return json.loads(run.stdout.splitlines()[-1])


def test_game_shows_each_sample_after_the_latency(monkeypatch):
    result = _run_on_xvfb(monkeypatch, "_play_in_a_window")
    samples = result["samples"]
    shown = [ShownFrame(**{**f, "root_px": f["root_px"] and tuple(f["root_px"])})
             for f in result["shown"]]
    assert result["region"] == list(VIEWPORT)
    assert [s["seq"] for s in samples] == list(range(len(samples)))
    assert [f.seq for f in shown] == [s["seq"] for s in samples]
    assert len(samples) >= 30  # the loop holds most of its 60 Hz on a busy machine
    for sample in samples[::10]:
        Sample.model_validate(sample)
    for frame, sample in zip(shown, samples, strict=True):
        assert frame.client_t == sample["t"]
        assert frame.shown_begin_ns - frame.step_ns >= 0.03e9  # never shown early
    assert len(result["grabs"]) == 8
    for start, end, seq in result["grabs"]:
        assert seq is not None
        assert seq in visible_seqs(shown, start, end)


def _cover_the_window() -> None:
    """Run in a fresh interpreter (cv2 before av): whether the game window's picture is on
    screen before, while and after another window covers it."""
    import cv2

    picture = np.full((VIEWPORT[1], VIEWPORT[0], 3), 200, np.uint8)
    seen = []
    with GameWindow(VIEWPORT) as window:
        seen.append(window.shows(picture))
        cv2.namedWindow("cover", cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        cv2.moveWindow("cover", 0, 0)
        cv2.imshow("cover", np.zeros((VIEWPORT[1] + 20, VIEWPORT[0] + 20, 3), np.uint8))
        cv2.waitKey(1)
        seen.append(window.shows(picture, wait_s=0.5))
        cv2.destroyWindow("cover")
        cv2.waitKey(1)
        seen.append(window.shows(picture))
    print(json.dumps(seen))


def test_window_knows_whether_its_picture_is_on_screen(monkeypatch):
    assert _run_on_xvfb(monkeypatch, "_cover_the_window") == [True, False, True]


def test_visible_seqs_covers_frames_on_screen_during_a_grab():
    def frame(seq, begin, end):
        return ShownFrame(seq, seq, 0, 0.0, begin, end, None, "Running")

    shown = [frame(0, 100, 110), frame(1, 200, 210), frame(2, 300, 310)]
    assert visible_seqs(shown, 150, 160) == {0}
    assert visible_seqs(shown, 205, 206) == {0, 1}  # grabbed while frame 1 was painted
    assert visible_seqs(shown, 250, 350) == {1, 2}
    assert visible_seqs(shown, 400, 401) == {2}
