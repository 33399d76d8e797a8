from __future__ import annotations

import http.client
import socket
import threading

import orjson
import pytest

from capture import (
    DEFAULT_PORT,
    ReceiverError,
    ReceiverThread,
    Session,
    SessionWriter,
)
from capture._wire import BatchReply, ByeReply, Health, HelloReply, SyncReply
from tests.capture._rx import batch, hello, post, request
from tests.conftest import make_sample


@pytest.fixture
def rx(tmp_path):
    writer = SessionWriter.create(tmp_path, "s1")
    with ReceiverThread(writer, port=0) as receiver:
        yield receiver
    writer.close()


def test_protocol_round_trip_stores_samples_probes_and_events(rx, tmp_path):
    health = Health.model_validate(request(rx.port, "GET", "/v1/health").body)
    assert (health.recording, health.session, health.protocol) == (True, "s1", 1)

    reply = post(rx.port, "/v1/hello", hello())
    assert reply.status == 200
    assert HelloReply.model_validate(reply.body).stored_through == -1

    sync = post(rx.port, "/v1/sync", {"t0": 10.0, "session": "s1"})
    probe = SyncReply.model_validate(sync.body)
    assert probe.t0 == 10.0 and probe.t2_ns >= probe.t1_ns > 0

    first = post(rx.port, "/v1/samples", batch("s1", [0, 1, 2]))
    assert BatchReply.model_validate(first.body) == BatchReply(
        stored_through=2, accepted=3, duplicates=0)
    # A plugin clock X ns behind the receiver's, 1 ms each way: the probe left at t0 = 10 s
    # plugin time, so X = t1 - 1 ms - t0, and its reply arrived at t3 = t2 + 1 ms - X.
    true_offset = probe.t1_ns - 1_000_000 - 10_000_000_000
    completed = {"t0": 10.0, "t1_ns": probe.t1_ns, "t2_ns": probe.t2_ns,
                 "t3": (probe.t2_ns + 1_000_000 - true_offset) / 1e9}
    # a probe that took 0.5 s more on the way back says something else; the fast one counts
    slow = {"t0": 20.0, "t1_ns": probe.t1_ns + 10**10, "t2_ns": probe.t2_ns + 10**10,
            "t3": (probe.t2_ns + 10**10 + 501_000_000 - true_offset) / 1e9}
    second = post(rx.port, "/v1/samples", batch("s1", [3, 4], probes=[slow, completed]))
    assert second.body == {"stored_through": 4, "accepted": 2, "duplicates": 0}
    bye = post(rx.port, "/v1/bye", {"session": "s1", "reason": "stopped", "last_seq": 4})
    assert ByeReply.model_validate(bye.body) == ByeReply(session="s1", stored_through=4)

    stats = rx.stats
    assert (stats.batches, stats.samples_stored, stats.stored_through) == (2, 5, 4)
    assert abs(stats.clock_offset_ns - true_offset) <= 2  # t3 travels as float seconds
    assert stats.plugin_connected is False  # after bye

    session = Session.open(tmp_path / "s1")
    records = list(session.state_records())
    assert [r["seq"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["sample"] for r in records] == [make_sample(s, s / 60) for s in range(5)]
    assert records[0]["arrival_mono_ns"] < records[3]["arrival_mono_ns"]
    assert session.manifest.plugin is not None
    assert session.manifest.plugin.place_name == "Test Place"
    sync_records = session.sync_records()
    assert [r["kind"] for r in sync_records] == ["anchor", "anchor", "probe", "probe", "anchor"]
    assert sync_records[0]["client"] == 12.5  # the hello's clock pair
    assert sync_records[3]["t1_ns"] == probe.t1_ns
    assert [e["kind"] for e in session.events()] == ["start", "hello", "bye"]


def test_retried_batches_are_stored_once(rx, tmp_path):
    post(rx.port, "/v1/samples", batch("s1", [0, 1, 2]))
    again = post(rx.port, "/v1/samples", batch("s1", [0, 1, 2]))
    overlap = post(rx.port, "/v1/samples", batch("s1", [2, 3]))
    assert again.body == {"stored_through": 2, "accepted": 0, "duplicates": 3}
    assert overlap.body == {"stored_through": 3, "accepted": 1, "duplicates": 1}
    seqs = [r["seq"] for r in Session.open(tmp_path / "s1").state_records()]
    assert seqs == [0, 1, 2, 3]
    assert rx.stats.duplicates == 4


def test_gaps_and_declared_drops_become_events(rx, tmp_path):
    post(rx.port, "/v1/samples", batch("s1", [0, 1]))
    held = post(rx.port, "/v1/samples", batch("s1", [5, 6]))
    assert held.body["stored_through"] == 1  # 2..4 may still arrive
    filled = post(rx.port, "/v1/samples", batch("s1", [2, 3, 4]))
    assert filled.body["stored_through"] == 6
    dropped = post(rx.port, "/v1/samples",
                   batch("s1", [10, 11], dropped=[{"first": 7, "last": 9}]))
    assert dropped.body["stored_through"] == 11  # the plugin will never send 7..9
    events = [e for e in Session.open(tmp_path / "s1").events() if e["kind"] in ("gap", "drop")]
    assert [(e["kind"], e["first"], e["last"]) for e in events] == [
        ("gap", 2, 4), ("drop", 7, 9)]


def test_values_on_the_bounds_are_accepted(rx, tmp_path):
    """What the plugin may send at the edge of each rule: a probe answered within the
    clocks' resolution (t3 == t0, t2_ns == t1_ns), a drop of one seq, a drop between two seqs
    of the batch, and an empty batch dropping the seq just before its seq_first."""
    probe = {"t0": 2.0, "t1_ns": 7_000, "t2_ns": 7_000, "t3": 2.0}
    first = post(rx.port, "/v1/samples", batch("s1", [0, 1, 3, 5], probes=[probe],
                                               dropped=[{"first": 2, "last": 2}]))
    assert first.status == 200, first.body
    assert first.body["stored_through"] == 3  # 4 may still arrive
    later = post(rx.port, "/v1/samples", batch("s1", [6], dropped=[{"first": 4, "last": 4}]))
    assert later.body["stored_through"] == 6
    empty = post(rx.port, "/v1/samples", batch("s1", [], seq_first=8,
                                               dropped=[{"first": 7, "last": 7}]))
    assert empty.status == 200, empty.body
    assert empty.body == {"stored_through": 7, "accepted": 0, "duplicates": 0}
    sync = Session.open(tmp_path / "s1").sync_records()
    assert [r["t1_ns"] for r in sync if r["kind"] == "probe"] == [7_000]


def test_first_seq_need_not_be_zero(rx):
    assert post(rx.port, "/v1/samples", batch("s1", [500, 501])).body["stored_through"] == 501


def test_thread_reports_a_taken_port_and_stops_twice(tmp_path):
    writer = SessionWriter.create(tmp_path, "s2")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ReceiverError, match="cannot listen"):
            ReceiverThread(writer, port=taken.getsockname()[1]).start()
    thread = ReceiverThread(writer, port=0).start()
    assert thread.url == f"http://127.0.0.1:{thread.port}"
    thread.stop()
    thread.stop()
    assert DEFAULT_PORT == 34873


@pytest.mark.parametrize("options", [
    {"host": "0.0.0.0"}, {"host": "192.168.1.2"}, {"host": "example.com"}, {"port": 70000},
    {"token": ""}, {"token": "caf\u00e9"}, {"token": "a\nb"}, {"max_body_bytes": 10}])
def test_constructor_refuses_bad_options(tmp_path, options):
    writer = SessionWriter.create(tmp_path, "s3")
    with pytest.raises(ReceiverError):
        ReceiverThread(writer, **options)


def test_an_acknowledged_batch_is_already_in_the_file(rx, tmp_path):
    state = tmp_path / "s1" / "state.jsonl"
    for i in range(5):
        reply = post(rx.port, "/v1/samples", batch("s1", [2 * i, 2 * i + 1]))
        assert reply.body["stored_through"] == 2 * i + 1
        assert state.read_bytes().count(b"\n") == 2 * i + 2


def test_health_is_answered_while_big_batches_are_being_stored(rx):
    """The loop stays free while the writer thread validates and writes: a health request
    sent after eight large batches were fully sent is answered before most of them (with
    validation on the loop it would wait for all eight)."""
    finished: list[str] = []
    lock = threading.Lock()
    connections = [http.client.HTTPConnection("127.0.0.1", rx.port, timeout=60)
                   for _ in range(8)]
    try:
        for i, conn in enumerate(connections):
            body = orjson.dumps(batch("s1", list(range(i * 1000, i * 1000 + 1000))))
            conn.request("POST", "/v1/samples", body, {"Content-Type": "application/json"})

        def wait(conn: http.client.HTTPConnection) -> None:
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            with lock:
                finished.append("batch")

        waiters = [threading.Thread(target=wait, args=(c,)) for c in connections]
        for waiter in waiters:
            waiter.start()
        health = request(rx.port, "GET", "/v1/health")
        with lock:
            finished.append("health")
        for waiter in waiters:
            waiter.join()
    finally:
        for conn in connections:
            conn.close()
    assert health.status == 200
    assert finished.index("health") < 6, finished
    assert rx.stats.samples_stored == 8000


def test_large_batches_go_through_the_validation_process_with_the_same_answers(rx, tmp_path):
    from capture._receiver import INLINE_BATCH_BYTES

    big = batch("s1", list(range(200)))
    assert len(orjson.dumps(big)) > INLINE_BATCH_BYTES
    assert post(rx.port, "/v1/samples", big).body == {
        "stored_through": 199, "accepted": 200, "duplicates": 0}
    bad = batch("s1", list(range(200, 400)))
    bad["samples"][150]["camera"]["fov_y"] = 500.0
    state = (tmp_path / "s1" / "state.jsonl").read_bytes()
    refused = post(rx.port, "/v1/samples", bad)
    assert refused.status == 422
    assert refused.body["error"]["path"] == "samples.150.camera.fov_y"
    assert (tmp_path / "s1" / "state.jsonl").read_bytes() == state
    again = post(rx.port, "/v1/samples", big)
    assert again.body == {"stored_through": 199, "accepted": 0, "duplicates": 200}
