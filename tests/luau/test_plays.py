"""Several Plays in one recording, and stopping a Play, through the plugin's copies in real
Luau VMs and the real receiver on loopback: every sample that reached the edit copy is
stored, seqs continue across Plays, and nothing waits in Unloading."""

from __future__ import annotations

import re

import pytest

from capture import Session
from tests.capture._rx import batch, post
from tests.luau._harness import PlaySolo
from tests.luau.test_play_solo import DT, _state

pytestmark = pytest.mark.timeout(180)
FLUSH_FRAMES = 6  # the client flushes every 0.1 s: at 60 frames/s, 6 frames


def _delivered(play: PlaySolo) -> list[int]:
    """Seqs of every sample message the edit copy received (from the harness's record)."""
    return [s for m in play.delivered if m.get("kind") == "samples" for s in m["seqs"]]


def _play_frames(play: PlaySolo, frames: int, wait: float = 0.3) -> None:
    play.idle(wait)  # hello, next_seq, arm
    assert play.sampling
    for i in range(frames):
        play.client.call("pose", _state(i))
        play.frame(DT)


@pytest.mark.parametrize("plays", [2, 3])
def test_every_play_of_a_recording_is_stored_and_seqs_continue(rx, plays: int) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    firsts = []
    for n in range(plays):
        if n:
            play.start_play()
        before = len(_delivered(play))
        _play_frames(play, 44 + 17 * n)
        play.stop_play()  # Stop pressed mid-batch: what the client had not flushed is lost
        play.idle(1.0)
        seqs = _delivered(play)[before:]
        firsts.append(seqs[0])
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert 44 + 17 * n - FLUSH_FRAMES <= len(seqs) <= 44 + 17 * n
    session = Session.open(writer.path)
    stored = sorted(r["seq"] for r in session.state_records())
    assert stored == sorted(_delivered(play)) == list(range(len(stored)))
    events = session.events()
    starts = [(e["play"], e["first_seq"]) for e in events if e["kind"] == "play"]
    assert [f for _, f in starts] == firsts and len({p for p, _ in starts}) == plays
    ends = [e for e in events if e["kind"] == "play_end"]
    assert len(ends) == plays and all(e["reason"] == "bye" for e in ends)
    assert play.logs("error") == [] and play.logs("warn") == []
    assert f"| {len(stored)} samples sent" in play.status_text


def test_a_play_stopped_while_the_receiver_is_slow_never_waits_in_unloading(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.host.latency = 0.4  # every request takes 0.4 s of Studio time
    _play_frames(play, 90, wait=0.6)
    play.stop_play()
    assert play.logs("error") == []  # no Unloading handler yielded
    play.idle(6.0)
    stored = sorted(r["seq"] for r in Session.open(writer.path).state_records())
    assert stored == sorted(_delivered(play)) and len(stored) >= 90 - FLUSH_FRAMES


def test_flaky_get_setting_does_not_stop_or_split_a_recording(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.host.flaky_settings = True  # GetSetting returns nil on every other read from now
    _play_frames(play, 120)
    play.disarm()
    while play.sampling:
        play.frame(DT)
    play.idle(1.0)
    session = Session.open(writer.path)
    stored = sorted(r["seq"] for r in session.state_records())
    assert stored == list(range(play.sampled_frames))
    kinds = [e["kind"] for e in session.events()]
    assert kinds.count("hello") == 1 and kinds.count("bye") == 1


def test_samples_the_receiver_already_had_show_as_duplicates_in_the_status(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.idle(0.3)  # armed at next_seq 0
    # another client fills seqs 0..199 meanwhile
    filled = post(receiver.port, "/v1/samples", batch(writer.session_id, list(range(200))))
    assert filled.status == 200
    for i in range(30):
        play.client.call("pose", _state(i))
        play.frame(DT)
    play.idle(1.5)
    sent = int(re.search(r"(\d+) samples sent", play.status_text).group(1))
    assert sent >= 30 - FLUSH_FRAMES and f"| {sent} duplicates" in play.status_text
    assert "already had" in play.status_text
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "already had" in warnings[0]


def test_record_twice_in_one_play_continues_the_seqs_of_that_play(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    counts = []
    for _ in range(2):
        _play_frames(play, 30)
        play.disarm()
        while play.sampling:
            play.frame(DT)
        play.idle(0.5)
        counts.append(len(_delivered(play)))
        play.record()
    session = Session.open(writer.path)
    stored = sorted(r["seq"] for r in session.state_records())
    assert stored == _delivered(play) == list(range(counts[-1]))
    assert counts[0] >= 30 and counts[1] >= counts[0] + 30
    plays = [e for e in session.events() if e["kind"] == "play"]
    assert len(plays) == 1  # one Play, one play id, two recordings
    assert [e["kind"] for e in session.events()].count("bye") == 2
