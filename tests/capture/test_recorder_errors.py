"""The recorder refuses what it cannot record, clearly and before writing anything, and
counts every tick it could not honour instead of re-timing frames."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from capture import RecorderError, Region, Session, SessionWriter
from capture._layout import VIDEO
from capture._recorder import ScreenRecorder

pytestmark = pytest.mark.x11


def _nothing_written(tmp_path) -> None:
    session = Session.open(tmp_path / "s")
    assert session.manifest.capture is None
    assert not (tmp_path / "s" / VIDEO).exists()
    assert [e["kind"] for e in session.events()] == ["start"]


def test_no_display_names_xvfb(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    writer = SessionWriter.create(tmp_path, "s")
    with pytest.raises(RecorderError, match=r"\$DISPLAY is not set.*Xvfb"):
        ScreenRecorder(writer).start()
    _nothing_written(tmp_path)


def test_a_display_that_does_not_answer_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", ":65000")
    writer = SessionWriter.create(tmp_path, "s")
    with pytest.raises(RecorderError, match=r"cannot connect to the display ':65000'.*Xvfb"):
        ScreenRecorder(writer).start()
    _nothing_written(tmp_path)


@pytest.mark.parametrize(("region", "monitor", "message"), [
    (Region(left=300, top=0, width=40, height=40), 1, "not inside the screen"),
    (Region(left=0, top=-1, width=10, height=10), 1, "not inside the screen"),
    (Region(left=0, top=0, width=320, height=241), 1, "not inside the screen"),
    (None, 2, "monitor 2 does not exist"),
    (None, -1, "monitor -1 does not exist"),
])
def test_bad_region_or_monitor(display, tmp_path, region, monitor, message):
    writer = SessionWriter.create(tmp_path, "s")
    with pytest.raises(RecorderError, match=message):
        ScreenRecorder(writer, region=region, monitor=monitor).start()
    _nothing_written(tmp_path)


@pytest.mark.parametrize(("options", "message"), [
    ({"fps": 0}, "fps=0 is out of range"), ({"fps": 1000}, "out of range"),
    ({"fps": float("nan")}, "out of range"), ({"crf": 60}, "crf=60 is out of range"),
    ({"encoder": "gpu"}, "encoder='gpu' is not one of auto, thread, process"),
])
def test_bad_settings_are_refused_at_construction(tmp_path, options, message):
    writer = SessionWriter.create(tmp_path, "s")
    with pytest.raises(RecorderError, match=message):
        ScreenRecorder(writer, **options)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("encoder", ["thread", "process"])
def test_a_starved_grab_thread_counts_missed_ticks_and_never_retimes(display, tmp_path,
                                                                      encoder):
    """A thread that holds the GIL for long stretches makes grabs late; every tick missed
    must show up as a drop, and no frame may be stamped earlier than its tick."""
    fps = 50
    period_ns = 1e9 / fps
    writer = SessionWriter.create(tmp_path, "s")
    done = threading.Event()

    def hog() -> None:
        while not done.is_set():
            sum(range(20_000))

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.05)  # the hog keeps the GIL for 50 ms at a time
    hogger = threading.Thread(target=hog)
    try:
        recorder = ScreenRecorder(writer, fps=fps, encoder=encoder).start()
        hogger.start()
        time.sleep(0.8)
        done.set()
        hogger.join()
        stats = recorder.stop()
    finally:
        done.set()
        sys.setswitchinterval(old)
    writer.finalize()
    session = Session.open(tmp_path / "s")
    table = session.read_frames().to_pylist()
    drops = [r["dropped_before"] for r in table]
    trailing = next(e for e in session.events() if e["kind"] == "recorder_stop")
    assert stats.dropped_late > 0 and stats.dropped == stats.dropped_late
    assert sum(drops) + trailing["dropped_after_last"] == stats.dropped
    ticks = np.arange(len(table)) + np.cumsum(drops)
    since_first = np.array([r["grab_start_ns"] - table[0]["grab_start_ns"] for r in table])
    assert np.all(since_first >= ticks * period_ns - 1e6)  # never earlier than its tick
    assert np.all(np.diff(since_first) > 0)


@pytest.mark.parametrize("encoder", ["thread", "process"])
def test_an_unwritable_video_fails_start(display, tmp_path, encoder):
    writer = SessionWriter.create(tmp_path, "s")
    (writer.path / VIDEO).mkdir()  # the video cannot be created
    with pytest.raises(RecorderError, match=r"cannot write the video .*Is a directory"):
        ScreenRecorder(writer, encoder=encoder).start()
    session = Session.open(tmp_path / "s")
    assert session.manifest.capture is None
    assert [e["kind"] for e in session.events()] == ["start"]
