"""Several Plays in one recording (docs/protocol.md, "Plays"): seqs continue from the hello
reply's `next_seq`, each Play is recorded once in events.jsonl, duplicates are warned about,
and a Play that goes quiet without a bye is closed. Real receiver, real HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest

from capture import Session
from tests.capture._rx import batch, hello, post


def _play(port: int, play: str, count: int, per_batch: int = 40) -> tuple[int, list[dict]]:
    """One Play as the plugin runs it: hello, then `count` samples from next_seq."""
    reply = post(port, "/v1/hello", {**hello(), "play": play})
    assert reply.status == 200, reply.body
    first = reply.body["next_seq"]
    session = reply.body["session"]
    replies = []
    for start in range(first, first + count, per_batch):
        seqs = list(range(start, min(start + per_batch, first + count)))
        r = post(port, "/v1/samples", batch(session, seqs))
        assert r.status == 200, r.body
        replies.append(r.body)
    return first, replies


@pytest.mark.parametrize("plays", [2, 3])
def test_every_play_is_stored_completely(rx, plays: int) -> None:
    receiver, writer = rx
    counts = [44, 130, 7][:plays]
    firsts = []
    for i, count in enumerate(counts):
        first, replies = _play(receiver.port, f"play-{i}", count)
        firsts.append(first)
        assert all(r["duplicates"] == 0 for r in replies)
    assert firsts == [0, 44, 174][:plays]
    session = Session.open(writer.path)
    seqs = sorted(r["seq"] for r in session.state_records())
    assert seqs == list(range(sum(counts)))
    events = [e for e in session.events() if e["kind"] in ("play", "play_end")]
    expected = []
    for i, first in enumerate(firsts):
        if i:
            expected.append(("play_end", f"play-{i - 1}", "next_play"))
        expected.append(("play", f"play-{i}", first))
    assert [(e["kind"], e["play"], e.get("first_seq", e.get("reason"))) for e in events] == expected


def test_repeated_hello_of_a_play_is_one_play_and_keeps_its_first_seq(rx) -> None:
    receiver, writer = rx
    _play(receiver.port, "a", 10)
    again = post(receiver.port, "/v1/hello", {**hello(), "play": "a"})
    assert again.body["next_seq"] == 10 and again.body["stored_through"] == 9
    plays = [e for e in Session.open(writer.path).events() if e["kind"] == "play"]
    assert [(e["play"], e["first_seq"]) for e in plays] == [("a", 0)]


def test_next_seq_counts_declared_drops(rx) -> None:
    receiver, _ = rx
    session = post(receiver.port, "/v1/hello", hello()).body["session"]
    r = post(receiver.port, "/v1/samples",
             batch(session, [8, 9], dropped=[{"first": 0, "last": 7}]))
    assert r.body["stored_through"] == 9
    assert post(receiver.port, "/v1/hello", {**hello(), "play": "b"}).body["next_seq"] == 10


def test_an_empty_session_starts_at_zero(rx) -> None:
    receiver, _ = rx
    assert post(receiver.port, "/v1/hello", hello()).body["next_seq"] == 0


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "{guid}", 7])
def test_bad_play_ids_are_refused_and_write_nothing(rx, bad: object) -> None:
    receiver, writer = rx
    r = post(receiver.port, "/v1/hello", {**hello(), "play": bad})
    assert r.status == 422 and r.body["error"]["path"] == "play"
    assert not [e for e in Session.open(writer.path).events() if e["kind"] in ("hello", "play")]


def test_a_play_that_restarts_at_zero_is_warned_in_the_log_and_the_reply(rx, caplog) -> None:
    receiver, _ = rx
    _play(receiver.port, "old", 44)
    session = post(receiver.port, "/v1/hello", {**hello(), "play": "second"}).body["session"]
    with caplog.at_level(logging.WARNING, logger="capture._ingest"):
        r = post(receiver.port, "/v1/samples", batch(session, list(range(44))))
    assert r.body == {"stored_through": 43, "accepted": 0, "duplicates": 44}
    assert any("seq 0..43" in m for m in caplog.messages)


def test_a_quiet_play_is_closed_and_recorded(rx, monkeypatch) -> None:
    receiver, writer = rx
    monkeypatch.setattr("capture._ingest.QUIET_PLAY_NS", 200_000_000)
    _play(receiver.port, "gone", 5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ends = [e for e in Session.open(writer.path).events() if e["kind"] == "play_end"]
        if ends:
            break
        time.sleep(0.1)
    assert [(e["play"], e["reason"], e["last_seq"]) for e in ends] == [("gone", "quiet", 4)]
    assert not receiver.stats.plugin_connected


def test_bye_ends_the_play_once(rx, monkeypatch) -> None:
    receiver, writer = rx
    monkeypatch.setattr("capture._ingest.QUIET_PLAY_NS", 200_000_000)
    _play(receiver.port, "p", 3)
    session = Session.open(writer.path).manifest.session_id
    assert post(receiver.port, "/v1/bye", {"session": session, "last_seq": 2}).status == 200
    time.sleep(1.5)  # the quiet check runs every second: it must not end the Play again
    ends = [e for e in Session.open(writer.path).events() if e["kind"] == "play_end"]
    assert [(e["play"], e["reason"]) for e in ends] == [("p", "bye")]


def test_sync_echoes_the_probe_id(rx) -> None:
    receiver, _ = rx
    reply = post(receiver.port, "/v1/sync", {"t0": 0.1 + 0.2, "id": 17})
    assert reply.status == 200 and reply.body["id"] == 17 and reply.body["t0"] == 0.1 + 0.2
    assert post(receiver.port, "/v1/sync", {"t0": 1.0}).body["id"] is None
    assert post(receiver.port, "/v1/sync", {"t0": 1.0, "id": -1}).status == 422
