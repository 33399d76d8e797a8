"""The encoder process: the right placement by frame size, a clear error when it cannot
start, and nothing left behind (no child, no /dev/shm segment) on stop, on failure and when
the recording process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from capture import RecorderError, Session, SessionWriter
from capture._encoder_process import EncoderProcess
from capture._layout import VIDEO
from capture._recorder import ScreenRecorder
from capture._xvfb import start_xvfb

pytestmark = pytest.mark.x11

ROOT = Path(__file__).resolve().parents[2]


def _shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _encoders(parent: int) -> list[int]:
    """Live encoder children of `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == parent and b"_encoder_process" in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_the_child_is_gone_and_shared_memory_freed_after_stop(display, tmp_path):
    before = _shm()
    writer = SessionWriter.create(tmp_path, "s")
    recorder = ScreenRecorder(writer, fps=20, encoder="process").start()
    (child,) = _encoders(os.getpid())
    maps = Path(f"/proc/{child}/maps").read_text()
    assert "libavcodec" in maps or "libx264" in maps
    assert "pydantic_core" not in maps and "aiohttp" not in maps  # imports only the encoder
    assert _shm() == before  # unlinked once both sides mapped it
    threading.Event().wait(0.3)
    stats = recorder.stop()
    writer.finalize()
    assert stats.frames > 0 and not _alive(child) and _encoders(os.getpid()) == []
    assert _shm() == before
    assert len(list(Session.open(tmp_path / "s").iter_frames())) == stats.frames


def test_an_encoder_that_cannot_write_fails_at_start_and_leaves_nothing(tmp_path):
    before = _shm()
    (tmp_path / "video.mkv").mkdir()
    with pytest.raises(RecorderError, match=r"encoder process failed: cannot write the video "
                                            r".*Is a directory.*permissions"):
        EncoderProcess(tmp_path / "video.mkv", 64, 48, slots=4, fps_hint=30, crf=18,
                       preset="veryfast")
    assert _encoders(os.getpid()) == [] and _shm() == before


def test_a_child_killed_mid_recording_fails_stop_with_a_consistent_session(display, tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    recorder = ScreenRecorder(writer, fps=30, encoder="process").start()
    threading.Event().wait(0.3)
    (child,) = _encoders(os.getpid())
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while recorder.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(RecorderError, match="encoder process failed: exit code -9"):
        recorder.stop()
    writer.finalize()
    assert _encoders(os.getpid()) == []
    session = Session.open(tmp_path / "s")
    assert any(e["kind"] == "error" and e["source"] == "recorder" for e in session.events())
    rows = session.read_frames().num_rows
    assert rows > 0 and rows == recorder.stats.frames


_DIES = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from capture import SessionWriter
from capture._recorder import ScreenRecorder
writer = SessionWriter.create(sys.argv[2], "s")
ScreenRecorder(writer, fps=20, encoder="process").start()
time.sleep(0.5)
print("recording", flush=True)
sys.stdin.readline()  # the test has listed the encoder process
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_child_exits_when_the_recording_process_dies(display, tmp_path):
    before = _shm()
    parent = subprocess.Popen([sys.executable, "-c", _DIES, str(ROOT), str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=os.environ.copy())
    assert parent.stdout.readline() == b"recording\n"
    children = _encoders(parent.pid)
    parent.stdin.write(b"die\n")
    parent.stdin.close()
    assert parent.wait(10) == -signal.SIGKILL
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children) == 1 and not _alive(children[0])
    assert _shm() == before
    with av.open(str(tmp_path / "s" / VIDEO)) as container:  # flushed before it exited
        assert sum(1 for _ in container.decode(video=0)) >= 5


@pytest.mark.parametrize(("size", "expected"), [((1280, 720), "thread"),
                                                ((1920, 1080), "process")])
def test_auto_encodes_in_a_process_from_1920x1080(monkeypatch, tmp_path, size, expected):
    server = start_xvfb(*size)
    try:
        monkeypatch.setenv("DISPLAY", server.display)
        writer = SessionWriter.create(tmp_path, "s")
        with ScreenRecorder(writer, fps=10) as recorder:
            assert recorder.encoder == expected
            assert len(_encoders(os.getpid())) == (expected == "process")
            threading.Event().wait(0.3)
        writer.finalize()
    finally:
        server.stop()
    assert recorder.stats.frames > 0
    assert Session.open(tmp_path / "s").events()[1]["encoder"] == expected
