"""`stpe record` and the Recording behind it: screen and state into one complete session,
and every bad option refused before anything is written."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from capture import ReceiverError, RecorderError, Recording, Session, SimulatedPlugin
from pipeline.cli import cli

pytestmark = pytest.mark.x11


def test_recording_pairs_screen_and_plugin_state(display, tmp_path):
    display.fill((10, 200, 90))
    with Recording(tmp_path, fps=30, port=0, token="t0k", session_id="s") as rec:
        assert rec.url.startswith("http://127.0.0.1:")
        with SimulatedPlugin(rec.url, token="t0k", probe_every=1) as plugin:
            submitted = plugin.play(0.8)
        live = rec.status()
    final = rec.stop()
    assert rec.stop() == final  # idempotent

    assert live.clock_offset_ms is not None and live.frames > 0
    assert final.samples == submitted == 48 and final.frames >= live.frames
    session = Session.open(tmp_path / "s")
    assert session.manifest.status == "complete" and session.manifest.plugin is not None
    assert session.manifest.notes["recorder_pid"] > 0
    assert [r["seq"] for r in session.state_records()] == list(range(submitted))
    frames = session.read_frames()
    assert frames.num_rows == final.frames
    grabs = frames["grab_start_ns"].to_numpy()
    assert session.manifest.created.host_mono_ns < grabs[0]
    assert grabs[-1] < session.manifest.stopped.host_mono_ns
    image = next(iter(session.iter_frames())).image
    np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), (10, 200, 90), atol=6)
    kinds = [e["kind"] for e in session.events()]
    assert {"start", "recorder_start", "hello", "recorder_stop", "stop"} <= set(kinds)


def test_a_failed_start_leaves_no_session_behind(display, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ReceiverError, match="cannot listen"):
            Recording(tmp_path, port=port, session_id="s").start()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("encoder", "placed"), [("auto", "thread"), ("process", "process")])
def test_stpe_record_runs_for_its_duration_and_finalizes(display, tmp_path, encoder, placed):
    result = CliRunner().invoke(cli, ["record", "--out", str(tmp_path), "--duration", "0.6",
                                      "--port", "0", "--fps", "20", "--monitor", "1",
                                      "--encoder", encoder])
    assert result.exit_code == 0, result.output
    assert "plugin address: http://127.0.0.1:" in result.stdout
    (path,) = tmp_path.iterdir()
    assert f"session complete: {path}" in result.stdout
    session = Session.open(path)
    assert session.manifest.status == "complete" and session.manifest.capture.fps == 20
    frames = session.read_frames().num_rows
    assert 4 <= frames <= 16  # 12 ticks in 0.6 s; never more than the duration allows
    assert f"recorded {frames} frames" in result.stdout
    start = next(e for e in session.events() if e["kind"] == "recorder_start")
    assert start["encoder"] == placed


@pytest.mark.parametrize(("args", "message"), [
    (["--region", "1,2,3"], "is not x,y,w,h"),
    (["--region", "a,b,c,d"], "is not x,y,w,h"),
    (["--region", "1,2,3,4,5"], "is not x,y,w,h"),
    (["--region", "0,0,0,10"], "must be positive"),
    (["--region", "0,0,10,10", "--monitor", "1"], "exclude each other"),
    (["--fps", "0"], "--fps"), (["--fps", "1000"], "--fps"), (["--fps", "nan"], "--fps"),
    (["--duration", "-1"], "--duration"), (["--duration", "inf"], "--duration"),
    (["--port", "70000"], "--port"),
    (["--monitor", "-1"], "--monitor"), (["--token", ""], "token is empty"),
    (["--encoder", "gpu"], "--encoder"), (["--encoder", ""], "--encoder"),
])
def test_bad_options_are_click_errors_and_write_nothing(display, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["record", "--out", str(tmp_path), "--port", "0",
                                      "--duration", "0.2", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--region", "300,200,100,100"], "not inside the screen"),
    (["--monitor", "7"], "monitor 7 does not exist"),
])
def test_impossible_capture_is_a_recorder_error_and_writes_nothing(display, tmp_path, args,
                                                                    message):
    result = CliRunner().invoke(cli, ["record", "--out", str(tmp_path), "--port", "0",
                                      "--duration", "0.2", *args])
    assert isinstance(result.exception, RecorderError)
    assert message in str(result.exception) and result.exception.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_no_display_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    result = CliRunner().invoke(cli, ["record", "--out", str(tmp_path), "--port", "0"])
    assert isinstance(result.exception, RecorderError)
    assert "Xvfb" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_stpe_record_cleanly(xvfb, tmp_path, sig):
    env = {**os.environ, "DISPLAY": xvfb.display}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "record", "--out", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        while not (line := process.stdout.readline()).startswith(b"plugin address: "):
            assert line, "stpe record exited before printing the plugin address"
        time.sleep(0.4)
        process.send_signal(sig)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    assert process.returncode == 0
    (path,) = tmp_path.iterdir()
    assert f"session complete: {path}".encode() in out
    session = Session.open(path)
    assert session.manifest.status == "complete" and session.read_frames().num_rows > 0
