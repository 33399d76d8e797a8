"""The screen recorder on a real (virtual) X screen: what is on screen at each grab time is
what the decoded frame shows, and every timestamp is the true grab time."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from capture import Region, Session, SessionWriter
from capture._recorder import ScreenRecorder
from tests.capture._x11 import paint_schedule

pytestmark = [pytest.mark.x11, pytest.mark.parametrize("encoder", ["thread", "process"])]

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (40, 220, 220),
           (230, 230, 230), (20, 20, 20), (180, 60, 200), (90, 140, 10), (250, 120, 0),
           (10, 90, 160), (160, 160, 60)]


def _expected_colour(log, start_ns: int, end_ns: int):
    """The colour surely on screen during [start_ns, end_ns], or None if a change overlaps."""
    current = None
    for before, after, colour in log:
        if after <= start_ns:
            current = colour
        elif before < end_ns:
            return None
    return current


def test_frames_show_what_was_on_screen_at_their_grab_time(display, tmp_path, encoder):
    display.fill((0, 0, 0))
    writer = SessionWriter.create(tmp_path, "s")
    recorder = ScreenRecorder(writer, fps=30, crf=12, encoder=encoder).start()
    log = paint_schedule(display, COLOURS, hold_s=0.1)
    stats = recorder.stop()
    writer.finalize()

    session = Session.open(tmp_path / "s")
    capture = session.manifest.capture
    assert capture is not None and capture.fps == 30 and capture.monitor == 1
    assert (capture.region.width, capture.region.height) == (320, 240)
    table = session.read_frames().to_pylist()
    frames = list(session.iter_frames())
    assert stats.frames == len(table) == len(frames) >= 15  # 36 ticks; a loaded host drops some
    assert [f.index for f in frames] == [r["index"] for r in table] == list(range(len(table)))

    starts = np.array([r["grab_start_ns"] for r in table])
    assert np.all(np.diff(starts) > 0)
    assert all(r["grab_start_ns"] <= r["grab_end_ns"] for r in table)
    video_start = session.manifest.video_start
    assert video_start is not None and video_start.host_mono_ns == table[0]["grab_start_ns"]
    true_us = (starts - video_start.host_mono_ns) / 1000
    decoded_us = np.array([f.pts_us for f in frames])
    assert np.abs(decoded_us - true_us).max() <= 501  # the grab time in whole ms (+1 us floor)
    ticks = len(table) + sum(r["dropped_before"] for r in table)
    assert sum(r["dropped_before"] for r in table) == stats.dropped
    duration_ticks = (starts[-1] - starts[0]) * 30 / 1e9 + 1
    assert abs(ticks - duration_ticks) < 1.0  # every scheduled tick is a frame or a drop

    checked, seen = 0, set()
    for frame, record in zip(frames, table, strict=True):
        expected = _expected_colour(log, record["grab_start_ns"], record["grab_end_ns"])
        if expected is None:
            continue
        mean = frame.image.reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - expected).max() < 6, (record["index"], mean, expected)
        checked += 1
        seen.add(expected)
    # frames grabbed while a paint was under way are left out; a loaded host paints slowly
    assert checked >= max(10, 0.5 * len(frames))
    assert len(seen) >= len(COLOURS) // 2


def test_a_region_with_odd_size_is_grabbed_at_its_place(display, tmp_path, encoder):
    display.fill((0, 0, 0))
    display.rect(101, 51, 33, 21, (240, 200, 20))
    display.rect(101, 51, 5, 5, (20, 60, 240))  # marks the region's top-left corner
    writer = SessionWriter.create(tmp_path, "s")
    region = Region(left=101, top=51, width=33, height=21)
    with ScreenRecorder(writer, fps=20, region=region, crf=10, encoder=encoder) as recorder:
        threading.Event().wait(0.4)
    writer.finalize()
    assert recorder.stats.frames >= 5
    session = Session.open(tmp_path / "s")
    assert session.manifest.capture.region == region and session.manifest.capture.monitor is None
    image = next(iter(session.iter_frames())).image
    assert image.shape == (21, 33, 3)
    np.testing.assert_allclose(image[10:16, 12:26].reshape(-1, 3).mean(axis=0), (240, 200, 20),
                               atol=10)
    np.testing.assert_allclose(image[:3, :3].reshape(-1, 3).mean(axis=0), (20, 60, 240),
                               atol=25)


def test_stop_is_idempotent_and_logs_start_and_stop(display, tmp_path, encoder):
    writer = SessionWriter.create(tmp_path, "s")
    recorder = ScreenRecorder(writer, fps=25, encoder=encoder).start()
    threading.Event().wait(0.3)
    first = recorder.stop()
    assert recorder.stop() == first and not first.running
    writer.finalize()
    events = Session.open(tmp_path / "s").events()
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["start", "recorder_start"]
    assert events[1]["encoder"] == recorder.encoder == encoder
    assert kinds[-2:] == ["recorder_stop", "stop"]
    stop = Session.open(tmp_path / "s").events()[-2]
    assert stop["frames"] == first.frames > 0
