"""Failure paths of the plugin in the Play Solo harness: receiver down then back, a receiver
restarted mid-stream, a full buffer, HTTP disabled, a receiver answering 422, the request
budget, the timecode strip."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from alignment._timecode import locate, read_cells
from alignment._timecode_code import cells_to_payload
from capture import ReceiverThread, Session, SessionWriter
from tests.luau._harness import PlaySolo
from tests.luau._refusing import refusing_receiver
from tests.luau._vm import to_python
from tests.luau.test_play_solo import DT, _state

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frames(play: PlaySolo, count: int, start: int = 0) -> int:
    for i in range(start, start + count):
        play.client.call("pose", _state(i))
        play.frame(DT)
    return start + count


def _finish(play: PlaySolo, i: int) -> None:
    play.disarm()
    while play.sampling:
        i = _frames(play, 1, i)
    play.idle(6.0)  # longer than the longest backoff (5 s)


def _max_per_window(times: list[float], window: float) -> int:
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def test_receiver_down_then_back_buffers_and_recovers_without_spam(tmp_path: Path) -> None:
    port = _free_port()
    play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.idle(0.3)
    i = _frames(play, 180)  # 3 s with nobody listening
    down = [r for r in play.host.requests if r[2] == 0]
    assert 3 <= len(down) <= 16  # backoff: a few tries, not one per frame
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "cannot reach the STPE receiver" in warnings[0]
    assert "stpe record" in warnings[0]
    writer = SessionWriter.create(tmp_path, "late")
    with ReceiverThread(writer, port=port):
        i = _frames(play, 120, i)
        _finish(play, i)
    writer.close()
    assert len(play.logs("warn")) == 1
    assert any("reconnected" in m and "0 samples were dropped" in m for m in play.logs("info"))
    seqs = sorted(r["seq"] for r in Session.open(writer.path).state_records())
    assert seqs == list(range(play.sampled_frames))
    times = [t for t, _, _ in play.host.requests]
    assert _max_per_window(times, 1.0) <= 12  # 8/s with a burst of 4 (Roblox allows 500/min)


def test_a_receiver_restarted_mid_stream_is_joined_and_the_outage_recorded(tmp_path: Path) -> None:
    port = _free_port()
    first = SessionWriter.create(tmp_path, "before")
    rx = ReceiverThread(first, port=port).start()
    play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.idle(0.3)
    i = _frames(play, 120)
    stored = rx.stats.samples_stored
    rx.stop()  # `stpe record` stopped mid-stream ...
    first.finalize()
    down_at = play.host.t
    i = _frames(play, 150)  # 2.5 s without a receiver, still sampling
    up_at = play.host.t
    second = SessionWriter.create(tmp_path, "after")  # ... and started again
    with ReceiverThread(second, port=port):
        i = _frames(play, 120, i)
        _finish(play, i)
    second.finalize()
    before = sorted(r["seq"] for r in Session.open(first.path).state_records())
    after = sorted(r["seq"] for r in Session.open(second.path).state_records())
    assert len(before) == stored >= 60 and before == list(range(stored))
    assert after == list(range(stored, play.sampled_frames))  # nothing lost, nothing twice
    (outage,) = [e for e in Session.open(second.path).events() if e["kind"] == "outage"]
    assert outage["previous_session"] == "before"
    assert outage["previous_stored_through"] == stored - 1
    # from the first failed request (the next batch after the stop) to the hello that joined
    # (within the longest backoff, 2 s, of the restart)
    assert down_at <= outage["since_client"] < down_at + 0.3
    assert up_at <= outage["until_client"] <= up_at + 2.1
    assert outage["span_s"] == pytest.approx(outage["until_client"] - outage["since_client"])
    assert outage["until_wall_ms"] - outage["since_wall_ms"] == pytest.approx(
        outage["span_s"] * 1000, abs=2)
    hellos = [t for t, path, status in play.host.requests if path == "/v1/hello"]
    assert 3 <= len(hellos) <= 8  # one at the start, then the backoff while it was down
    assert any("reconnected" in m for m in play.logs("info"))


def test_full_buffer_drops_oldest_and_reports_the_ranges(tmp_path: Path) -> None:
    port = _free_port()
    play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off", "STPE_bufferSamples": 60})
    play.idle(0.3)
    i = _frames(play, 240)  # 4 s down: far more than 60 buffered samples
    writer = SessionWriter.create(tmp_path, "drops")
    with ReceiverThread(writer, port=port):
        i = _frames(play, 60, i)
        _finish(play, i)
    writer.close()
    session = Session.open(writer.path)
    stored = sorted(r["seq"] for r in session.state_records())
    drops = [e for e in session.events() if e["kind"] == "drop"]
    dropped = [s for e in drops for s in range(e["first"], e["last"] + 1)]
    assert drops and dropped[0] == 0
    assert sorted(stored + dropped) == list(range(play.sampled_frames))  # each seq once
    assert not set(stored) & set(dropped)
    # the backoff (5 s by then) outlasts the rest of the recording, so what survives is
    # exactly the buffer's worth of the newest samples
    assert stored == list(range(play.sampled_frames - 60, play.sampled_frames))
    assert any("reconnected" in m and "dropped" in m for m in play.logs("info"))


def test_http_disabled_says_so_once_with_the_fix(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "nohttp")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "off"})
        play.host.http_enabled = False
        play.idle(0.3)
        _frames(play, 300)
    writer.close()
    warnings = play.logs("warn")
    assert len(warnings) == 1
    assert "HTTP requests are disabled" in warnings[0] and "Allow HTTP Requests" in warnings[0]
    assert "HttpEnabled = true" in warnings[0]
    assert list(Session.open(writer.path).state_records()) == []
    play.idle(1.0)
    assert "HTTP requests are disabled" in play.status_text


def test_422_drops_the_batch_with_the_reason_and_does_not_retry() -> None:
    with refusing_receiver(422, "samples.0.dt: too big") as (port, batches):
        play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off"})
        play.idle(0.3)
        _finish(play, _frames(play, 120))
    sent = [s["seq"] for b in batches for s in b["samples"]]
    assert sorted(sent) == sent == list(range(play.sampled_frames))  # each sent exactly once
    later = batches[1:]
    assert later and later[0]["dropped"][0]["first"] == 0  # the loss is reported onward
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "rejected" in warnings[0]
    assert "samples.0.dt: too big" in warnings[0]
    assert "| 0 samples sent" in play.status_text


def test_507_stops_the_upload_and_shows_the_receivers_message() -> None:
    with refusing_receiver(507, "could not write state.jsonl: No space left on device") as (
            port, batches):
        play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off"})
        play.idle(0.3)
        i = _frames(play, 120)
        sent = len(play.host.requests)
        _finish(play, i)
    assert len(batches) == 1  # never retried, nothing more sent, not even a bye
    assert len(play.host.requests) == sent
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert "HTTP 507" in warnings[0] and "free disk space" in warnings[0]
    assert "No space left on device" in play.status_text


def _strip_seq(play: PlaySolo) -> int | None:
    strip = play.client.call("strip")[0]
    if strip is None:
        return -1
    view = to_python(strip)
    assert view["order"] == 2**31 - 1 and view["inset"] is True
    assert view["anchor"] == [0, 1] and view["position"] == [0, 1]
    seq = cells_to_payload(np.array(view["cells"]))
    # the whole drawn grid, as a captured image, through the video decoder: it refuses a
    # strip whose bottom row is not the complement of the code row (docs/timecode.md)
    image = np.kron(np.array(view["grid"], np.uint8) * 255, np.ones((8, 8), np.uint8))
    luma = np.pad(image, 24)  # a black viewport around the strip
    geometry = locate(luma)
    assert geometry is not None
    assert read_cells(luma, geometry.sample_grid(*luma.shape)) == seq
    assert np.array_equal(np.array(view["grid"])[2, 1:-1], 1 - np.array(view["cells"]))
    return seq


def test_timecode_cells_decode_to_the_sample_seq(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "tc")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "always"})
        play.idle(0.3)
        shown = []
        for i in range(40):
            play.client.call("pose", _state(i))
            play.frame(DT)
            shown.append(_strip_seq(play))
        _finish(play, 40)
    writer.close()
    assert shown == list(range(40))  # the frame that shows seq n is the frame sampled as n


def test_clap_mode_shows_the_strip_at_start_and_after_stop_only(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "clap")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "clap",
                                  "STPE_clapSeconds": 0.5})
        play.idle(0.06)  # the clap starts when the arm arrives
        assert play.sampling
        shown = []
        for i in range(90):
            play.client.call("pose", _state(i))
            play.frame(DT)
            shown.append(_strip_seq(play))
        play.disarm()
        tail = []
        i = 90
        while play.sampling:
            play.client.call("pose", _state(i))
            play.frame(DT)
            tail.append(_strip_seq(play))
            i += 1
        play.idle(1.0)
    writer.close()
    opening = shown.index(-1)  # the opening clap: 0.5 s from the start, about 30 frames
    assert 24 <= opening <= 30 and shown[:opening] == list(range(opening))
    assert set(shown[opening:]) == {-1}  # hidden in the middle
    assert len(tail) >= 30 and tail[-2] == i - 2 and set(tail[-30:-1]) != {-1}
    stored = sorted(r["seq"] for r in Session.open(writer.path).state_records())
    assert stored == list(range(play.sampled_frames))
