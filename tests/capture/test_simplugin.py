from __future__ import annotations

import threading

import pytest

from capture import PluginError, ReceiverThread, Session, SessionWriter, synthetic_sample
from capture._simplugin import SimulatedPlugin
from capture._wire import Sample


@pytest.fixture
def writer(tmp_path):
    with SessionWriter.create(tmp_path, "s1") as w:
        yield w


def _stored(writer: SessionWriter) -> list[dict]:
    return list(Session.open(writer.path).state_records())


def test_samples_fed_from_a_game_thread_are_stored_once_in_order(writer):
    samples = [synthetic_sample(seq, 200.0 + seq / 60) for seq in range(300)]
    with ReceiverThread(writer, port=0) as rx:
        plugin = SimulatedPlugin(rx.url, batch_hz=50, probe_every=2).start()
        game = threading.Thread(target=lambda: [plugin.submit(s) for s in samples])
        game.start()
        game.join()
        plugin.stop()
        stats = rx.stats
    records = _stored(writer)
    assert [r["sample"] for r in records] == samples
    assert (stats.samples_stored, stats.duplicates, stats.stored_through) == (300, 0, 299)
    assert plugin.stored_through == 299 and plugin.dropped == 0
    kinds = [r["kind"] for r in Session.open(writer.path).sync_records()]
    assert kinds.count("probe") >= 1 and kinds.count("anchor") == plugin.batches + 1


def test_clock_offset_estimate_matches_the_simulated_clock(writer):
    with ReceiverThread(writer, port=0) as rx:
        with SimulatedPlugin(rx.url, clock_offset_s=50.0, probe_every=1) as plugin:
            plugin.play(0.5)
        offset = rx.stats.clock_offset_ns
    truth = plugin.clock.origin_ns - 50.0e9  # host_mono_ns - client * 1e9, zero drift
    assert offset is not None
    assert abs(offset - truth) < 20e6  # half the probe's round trip bounds the error


def test_synthetic_play_is_valid_and_paced(writer):
    with ReceiverThread(writer, port=0) as rx, SimulatedPlugin(rx.url) as plugin:
        count = plugin.play(0.5, rate=60)
    records = _stored(writer)
    assert count == 30 and len(records) == 30
    ts = [Sample.model_validate(r["sample"]).t for r in records]
    assert ts == sorted(ts) and 0.3 < ts[-1] - ts[0] < 1.0
    assert Session.open(writer.path).manifest.plugin.datamodel == "simulated"


def test_receiver_outage_retries_then_drops_oldest_beyond_the_buffer(writer):
    first = ReceiverThread(writer, port=0).start()
    port = first.port
    plugin = SimulatedPlugin(first.url, batch_hz=100, buffer_limit=20).start()
    for seq in range(10):
        plugin.submit(synthetic_sample(seq, seq / 60))
    while plugin.stored_through < 9:
        threading.Event().wait(0.01)
    first.stop()
    for seq in range(10, 50):  # receiver down: 10..29 are pushed out of the buffer
        plugin.submit(synthetic_sample(seq, seq / 60))
    with ReceiverThread(writer, port=port):
        plugin.stop()
    seqs = [r["seq"] for r in _stored(writer)]
    assert plugin.dropped == 20 and plugin.outages == 1
    assert seqs == list(range(10)) + list(range(30, 50))
    events = Session.open(writer.path).events()
    drops = [e for e in events if e["kind"] == "drop"]
    assert [(e["first"], e["last"]) for e in drops] == [(10, 29)]
    (outage,) = [e for e in events if e["kind"] == "outage"]
    assert outage["previous_stored_through"] == 9 and outage["span_s"] >= 0


def test_replay_reproduces_a_recorded_session(tmp_path, writer):
    with ReceiverThread(writer, port=0) as rx, SimulatedPlugin(rx.url, compress=True) as plugin:
        plugin.play(0.3)
    copy = SessionWriter.create(tmp_path, "copy")
    with ReceiverThread(copy, port=0) as rx, SimulatedPlugin(rx.url) as plugin:
        count = plugin.replay(writer.path / "state.jsonl", speed=4.0)
    copy.close()
    assert count == 18
    assert [r["sample"] for r in _stored(copy)] == [r["sample"] for r in _stored(writer)]


def test_tokens_and_bad_use_are_refused(writer):
    with ReceiverThread(writer, port=0, token="s3cret") as rx:
        with pytest.raises(PluginError, match="401"):
            SimulatedPlugin(rx.url, token="wrong").start()
        with SimulatedPlugin(rx.url, token="s3cret") as plugin:
            plugin.submit(synthetic_sample(5, 1.0))
            with pytest.raises(PluginError, match="strictly increase"):
                plugin.submit(synthetic_sample(5, 1.1))
            with pytest.raises(PluginError, match="non-negative"):
                plugin.submit({"seq": -1})
        assert rx.stats.samples_stored == 1
    with pytest.raises(PluginError, match="http://"):
        SimulatedPlugin("ftp://127.0.0.1:1")
    unreachable = SimulatedPlugin("http://127.0.0.1:9", timeout_s=0.5, connect_timeout_s=0.5)
    with pytest.raises(PluginError, match="failed"):
        unreachable.start()
    assert unreachable.retries >= 3  # hello retried with backoff: 0.05 + 0.1 + 0.2 s
