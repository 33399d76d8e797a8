"""`stpe record` as a user meets it: the live line within 80 columns, a warning when the
plugin never connected, nothing left by a failed start, and --window on a real X screen."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import orjson
import pytest
from rich.console import Console

from capture import RecorderError, RecordingStatus, Session
from capture._xvfb import start_xvfb
from pipeline.commands.record import _line
from tests.pipeline.terminal import COLUMNS, in_terminal, piped

pytestmark = pytest.mark.x11

TITLE = "stpe window test"
WINDOW = (160, 96)
BGR = (40, 60, 220)  # a red window


@pytest.fixture(scope="module")
def screen():
    try:
        server = start_xvfb(400, 300)
    except RecorderError as exc:
        pytest.skip(f"needs Xvfb: {exc}")
    yield {"DISPLAY": server.display}
    server.stop()


@pytest.fixture
def window(screen):
    """A titled window at (70, 50) on the virtual screen, kept painted by a child."""
    code = textwrap.dedent(f"""
        import sys, numpy as np, cv2
        from pipeline.demo._display import GameWindow
        w = GameWindow({WINDOW}, title={TITLE!r}).open()
        cv2.moveWindow({TITLE!r}, 70, 50)
        image = np.zeros(({WINDOW[1]}, {WINDOW[0]}, 3), np.uint8)
        image[:] = {BGR}
        assert w.shows(image)
        print(w.region().model_dump_json(), flush=True)
        while sys.stdin.readline():
            pass
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **screen})
    try:
        child.stdout.readline()
        yield child
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def _status(**changes) -> RecordingStatus:
    values = {"session": "s", "elapsed_s": 3599.9, "frames": 107_997, "fps": 30.0,
              "drops": 12, "samples": 215_994, "samples_per_s": 60.0,
              "clock_offset_ms": 12.34, "plugin_connected": True, "failed": None}
    return RecordingStatus(**{**values, **changes})


def _render(status: RecordingStatus, width: int = COLUMNS) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(_line(status, width))
    return console.export_text().splitlines()


def test_the_live_line_fits_80_columns_uncut():
    (line,) = _render(_status())
    assert len(line) <= COLUMNS and "…" not in line
    assert "3599.9 s" in line and "30.0 fps" in line and "12 dropped" in line
    assert "state 60/s (215994)" in line and "clock +12.34 ms" in line
    (waiting,) = _render(_status(plugin_connected=False, samples=0, clock_offset_ms=None))
    assert "no plugin yet" in waiting and "no probe yet" in waiting
    (narrow,) = _render(_status(), width=50)  # a narrow terminal: one cut line, no wrap
    assert len(narrow) <= 50 and narrow.endswith("…")


def test_no_plugin_is_a_clear_warning_in_80_columns(screen, tmp_path):
    out = tmp_path / "run1"
    view = in_terminal("record", "--out", out, "--port", "0", "--duration", "1.5",
                       env=screen)
    assert view.code == 0, view.text
    assert not [line for line in view.lines if len(line) > COLUMNS], view.text
    assert "Traceback" not in view.text
    assert f"session complete: {out}" in view.flat
    assert "the plugin never connected" in view.flat and "reach 127.0.0.1" in view.flat
    assert "next: stpe align" in view.flat
    assert Session.open(out).manifest.status == "complete"  # --out is the session itself


def test_json_matches_the_session(screen, tmp_path):
    run = piped("record", "--out", tmp_path / "s", "--port", "0", "--duration", "1",
                "--json", env=screen)
    assert run.returncode == 0, run.stderr
    doc = orjson.loads(run.stdout)
    frames = Session.open(tmp_path / "s").read_frames().num_rows
    assert doc["frames"] == frames > 0 and doc["samples"] == 0
    assert doc["plugin_connected"] is False and doc["session"] == str(tmp_path / "s")


def test_a_failed_start_leaves_no_out_folder(screen, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = piped("record", "--out", tmp_path / "new" / "run1", "--port", port, env=screen)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "cannot listen" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_session_is_not_recorded_into(screen, tmp_path):
    first = piped("record", "--out", tmp_path / "s", "--port", "0", "--duration", "0.5",
                  env=screen)
    assert first.returncode == 0, first.stderr
    again = piped("record", "--out", tmp_path / "s", "--port", "0", env=screen)
    assert again.returncode == 2 and "is already a session" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_window_records_just_that_window(screen, window, tmp_path):
    run = piped("record", "--window", "window test", "--out", tmp_path / "w", "--port", "0",
                "--duration", "1", env=screen)
    assert run.returncode == 0, run.stderr
    session = Session.open(tmp_path / "w")
    region = session.manifest.capture.region
    assert (region.left, region.top, region.width, region.height) == (70, 50, *WINDOW)
    image = next(iter(session.iter_frames())).image
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), BGR[::-1], atol=8)


def test_window_not_found_falls_back_to_region(screen, tmp_path):
    run = piped("record", "--window", "no such window", "--region", "0,0,64,48",
                "--out", tmp_path / "r", "--port", "0", "--duration", "0.5", env=screen)
    assert run.returncode == 0, run.stderr
    assert "no visible window's title contains 'no such window'" in " ".join(
        run.stderr.split())
    region = Session.open(tmp_path / "r").manifest.capture.region
    assert (region.width, region.height) == (64, 48)
    alone = piped("record", "--window", "no such window", "--out", tmp_path / "x",
                  "--port", "0", env=screen)
    assert alone.returncode == 1 and "use --region" in alone.stderr
    assert not (tmp_path / "x").exists()
