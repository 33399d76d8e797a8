"""What the receiver's ingest writes into a session, read back from disk line by line:
the hello's manifest, anchor and events (outage, Play), a batch's anchor and probes, a
bye, the end of a quiet Play, and the refusals a plugin sees (bodies past the limit,
another session, a failed disk). Expected values are the request's own fields, by hand."""

from __future__ import annotations

import gzip
import logging

import orjson
import pytest

from capture import Session, SessionWriter
from capture._guard import RefusedError
from capture._ingest import QUIET_PLAY_NS, Arrival, Ingest
from capture._layout import STATE
from capture._validate import PreparedBatch
from tests.capture._rx import hello

S = 1_000_000_000  # ns
WALL0 = 1_700_000_000 * S


def _at(seconds: float) -> Arrival:
    return Arrival(mono_ns=round(seconds * S), wall_ns=WALL0 + round(seconds * S))


def _batch(seqs: list[int], probes=(), sent_client: float = 1.0,
           sent_wall_ms: int = 1_700_000_000_000) -> PreparedBatch:
    return PreparedBatch(session="s", seqs=tuple(seqs),
                         samples_json=tuple(orjson.dumps({"seq": s}) for s in seqs),
                         probes=tuple(probes), dropped=(), sent_client=sent_client,
                         sent_wall_ms=sent_wall_ms)


def _logged(writer: SessionWriter) -> tuple[list[dict], list[dict]]:
    """events.jsonl without the start event and the host stamps, and sync.jsonl."""
    session = Session.open(writer.path)
    events = [{k: v for k, v in e.items() if k not in ("host_mono_ns", "host_wall_ns")}
              for e in session.events() if e["kind"] != "start"]
    return events, session.sync_records()


def test_hello_writes_the_plugin_its_anchor_outage_and_play(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    assert ingest.stats(0).plugin_connected is False
    outage = {"since_client": 12.25, "since_wall_ms": 1_699_999_999_750, "session": "old",
              "stored_through": 41}
    body = orjson.dumps({**hello(), "play": "p1", "outage": outage})
    reply = ingest.hello(body, "identity", _at(3))
    assert (reply.session, reply.stored_through, reply.next_seq) == ("s", -1, 0)
    stats = ingest.stats(4 * S)
    assert stats.plugin_connected is True and stats.last_arrival_mono_ns == 3 * S
    assert writer.manifest.plugin.model_dump() == {
        "plugin_version": "0.1.0", "place_id": 42, "place_name": "Test Place",
        "datamodel": "simulated", "viewport": (1280.0, 720.0)}
    assert Session.open(writer.path).manifest.plugin.place_id == 42
    events, sync = _logged(writer)
    assert sync == [{"kind": "anchor", "client": 12.5, "wall_ms": 1_700_000_000_000,
                     "arrival_mono_ns": 3 * S, "arrival_wall_ns": WALL0 + 3 * S}]
    # the outage: from 12.25 s to the hello's client_clock 12.5 s on the plugin's clock
    assert events == [
        {"kind": "hello", "plugin_version": "0.1.0", "datamodel": "simulated", "place_id": 42,
         "play": "p1"},
        {"kind": "outage", "since_client": 12.25, "until_client": 12.5, "span_s": 0.25,
         "since_wall_ms": 1_699_999_999_750, "until_wall_ms": 1_700_000_000_000,
         "previous_session": "old", "previous_stored_through": 41},
        {"kind": "play", "play": "p1", "first_seq": 0, "datamodel": "simulated"}]


def test_batches_write_their_anchor_new_probes_gaps_and_warn_of_duplicates(tmp_path, caplog):
    """A probe is the one already stored only when both its t0 and t1 match."""
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    first = [(1.0, 5 * S, 5 * S + 10, 1.5), (2.0, 5 * S, 5 * S + 10, 2.5)]  # one t1
    ingest.batch(_batch([0], first, sent_client=7.5, sent_wall_ms=1_700_000_000_123), _at(4))
    second = [(1.0, 6 * S, 6 * S, 1.25), first[0]]  # first[0]'s t0 again; first[0] again
    ingest.batch(_batch([2], second, sent_client=8.0), _at(5))
    with caplog.at_level(logging.WARNING, logger="capture._ingest"):
        assert ingest.batch(_batch([0, 2, 3]), _at(6)) == (0, 1, 2)
    assert caplog.messages == ["2 samples of a batch (seq 0..3) were already stored and were "
                               "dropped: a retried batch, or a Play that did not continue the "
                               "session's seqs"]
    events, sync = _logged(writer)
    assert events == [{"kind": "gap", "first": 1, "last": 1}]  # 1 missing between 0 and 2
    assert [(r["t0"], r["t1_ns"]) for r in sync if r["kind"] == "probe"] == [
        (1.0, 5 * S), (2.0, 5 * S), (1.0, 6 * S)]
    assert [r for r in sync if r["kind"] == "anchor"] == [
        {"kind": "anchor", "client": 7.5, "wall_ms": 1_700_000_000_123,
         "arrival_mono_ns": 4 * S, "arrival_wall_ns": WALL0 + 4 * S},
        {"kind": "anchor", "client": 8.0, "wall_ms": 1_700_000_000_000,
         "arrival_mono_ns": 5 * S, "arrival_wall_ns": WALL0 + 5 * S},
        {"kind": "anchor", "client": 1.0, "wall_ms": 1_700_000_000_000,
         "arrival_mono_ns": 6 * S, "arrival_wall_ns": WALL0 + 6 * S}]


def test_the_clock_offset_leaves_out_the_time_the_receiver_held_a_probe(tmp_path):
    """delay = (t3 - t0) - (t2 - t1): held 0.2 s of a 0.3 s round trip is a 0.1 s delay,
    less than a 0.25 s round trip answered at once; its offset ((t1 - t0) + (t2 - t3)) / 2
    = ((3 - 1) + (3.2 - 1.3)) / 2 s = 1.95 s."""
    ingest = Ingest(SessionWriter.create(tmp_path, "s"), 16 << 10)
    held = (1.0, 3 * S, 3 * S + 200_000_000, 1.3)
    prompt = (2.0, 4 * S, 4 * S, 2.25)  # offset (2 + 1.75) / 2 = 1.875 s
    ingest.batch(_batch([0], [prompt, held]), _at(1))
    assert ingest.stats(1 * S).clock_offset_ns == 1_950_000_000


def test_a_probe_is_remembered_until_4096_newer_ones_came(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    probes = [(float(i), i * S, i * S, i + 0.5) for i in range(1, 4098)]  # 4097 probes
    ingest.batch(_batch([0], probes), _at(1))
    ingest.batch(_batch([1], [probes[1], probes[0]]), _at(2))  # the 2nd is kept, the 1st not
    _, sync = _logged(writer)
    again = [r["t0"] for r in sync[4098:] if r["kind"] == "probe"]
    assert len(sync) == 4097 + 1 + 1 + 1 and again == [1.0]


def test_bye_is_recorded_and_ends_the_connection(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    ingest.hello(orjson.dumps(hello()), "identity", _at(1))
    body = b'{"session": "s", "reason": "studio_closed", "last_seq": 7}'
    assert ingest.bye(body, "identity", _at(2)).stored_through == -1
    events, _ = _logged(writer)
    assert events[-1] == {"kind": "bye", "reason": "studio_closed", "last_seq": 7}
    assert ingest.stats(2 * S).plugin_connected is False


def test_a_play_is_closed_after_exactly_30_quiet_seconds_and_once(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    ingest.hello(orjson.dumps({**hello(), "play": "p"}), "identity", _at(100))
    assert QUIET_PLAY_NS == 30 * S
    assert ingest.close_quiet(101 * S) is False
    assert ingest.close_quiet(130 * S - 1) is False
    assert [e["kind"] for e in _logged(writer)[0]] == ["hello", "play"]
    assert ingest.close_quiet(130 * S) is True
    assert _logged(writer)[0][-1] == {"kind": "play_end", "play": "p", "reason": "quiet",
                                      "last_seq": -1}
    assert ingest.stats(130 * S).plugin_connected is False
    assert ingest.close_quiet(200 * S) is False  # no Play open any more
    assert len(_logged(writer)[0]) == 3


def test_after_a_failed_write_every_request_is_refused_with_the_reason(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 16 << 10)
    ingest.hello(orjson.dumps({**hello(), "play": "p"}), "identity", _at(1))
    (writer.path / STATE).mkdir()  # state.jsonl cannot be opened: the write fails
    with pytest.raises(RefusedError) as failed:
        ingest.batch(_batch([0]), _at(2))
    reason = f"cannot write {writer.path / STATE} ("
    assert failed.value.status == 507
    assert str(failed.value).startswith(f"the receiver cannot store anything more: {reason}")
    assert str(failed.value).endswith(" Stop sending; this recording has stopped")
    with pytest.raises(RefusedError) as again:
        ingest.hello(orjson.dumps(hello()), "identity", _at(3))
    assert (again.value.status, again.value.code) == (507, "storage_failed")
    assert str(again.value) == str(failed.value)
    events_before = (writer.path / "events.jsonl").read_bytes()
    assert ingest.close_quiet(60 * S) is False  # the Play's end cannot be written either
    assert (writer.path / "events.jsonl").read_bytes() == events_before


@pytest.mark.parametrize("route", ["hello", "sync", "bye"])
def test_gzip_bodies_are_inflated_up_to_the_limit(tmp_path, route):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 400)
    small = {"hello": orjson.dumps(hello()), "sync": b'{"session": "s", "t0": 2.5}',
             "bye": b'{"session": "s"}'}[route]
    call = {"hello": lambda b: ingest.hello(b, "gzip", _at(1)),
            "sync": lambda b: ingest.sync(b, "gzip"),
            "bye": lambda b: ingest.bye(b, "gzip", _at(1))}[route]
    assert len(small) <= 400
    assert call(gzip.compress(small)).session == "s"
    padded = small + b" " * (401 - len(small))  # valid JSON, one byte past the limit
    with pytest.raises(RefusedError) as refused:
        call(gzip.compress(padded))
    assert (refused.value.status, refused.value.code, str(refused.value)) == (
        413, "body_too_large", "the decompressed body exceeds 400 bytes; send smaller batches")


def test_a_probe_for_another_session_says_which_one_records(tmp_path):
    ingest = Ingest(SessionWriter.create(tmp_path, "s"), 16 << 10)
    with pytest.raises(RefusedError) as refused:
        ingest.sync(b'{"session": "old", "t0": 1.0}', "identity")
    assert (refused.value.status, refused.value.code, refused.value.path) == (
        404, "unknown_session", "session")
    assert str(refused.value) == ("session 'old' is not recording here; the receiver records "
                                  "'s': send hello again to join it")
