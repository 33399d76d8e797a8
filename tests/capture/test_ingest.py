"""The receiver's bookkeeping, driven directly on a real session store: the ledger of
settled seqs against a set, gaps and drops in events.jsonl, and the statistics worked by
hand (NTP offset of the least-delayed probe, the 5 s sample rate, the connection timeout)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from capture import Session, SessionWriter
from capture._errors import SessionError, StorageError
from capture._guard import RefusedError
from capture._ingest import Arrival, Ingest, SeqLedger, _refusing_failed_writes, _runs
from capture._validate import PreparedBatch

S = 1_000_000_000  # ns


def _first_run_end(settled: set[int]) -> int:
    """The oracle's stored_through: from the lowest settled seq up to the first hole."""
    if not settled:
        return -1
    seq = min(settled)
    while seq + 1 in settled:
        seq += 1
    return seq


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 6)), max_size=12))
def test_ledger_agrees_with_a_set_of_seqs(ranges):
    ledger, settled = SeqLedger(), set()
    for first, length in ranges:
        before = ledger.copy()
        ledger.add(first, first + length)
        settled |= set(range(first, first + length + 1))
        assert ledger.stored_through == _first_run_end(settled)
        assert ledger.highest == max(settled)
        assert [s for s in range(-1, 50) if s in ledger] == sorted(settled)
        for a in range(0, 48, 3):
            for b in (a, a + 1, a + 4):
                assert ledger.covers(a, b) == (set(range(a, b + 1)) <= settled)
        assert before.highest <= ledger.highest  # the copy did not change with the ledger
    empty = SeqLedger()
    assert empty.stored_through == empty.highest == -1 and 0 not in empty
    assert not empty.covers(0, 0)


def test_ledger_copy_is_independent():
    ledger = SeqLedger()
    ledger.add(0, 4)
    twin = ledger.copy()
    twin.add(5, 9)
    twin.add(20, 20)
    assert ledger.highest == 4 and 7 not in ledger
    assert twin.stored_through == 9 and twin.highest == 20


def test_runs_of_seqs():
    assert _runs([3, 4, 5, 9, 11, 12]) == [(3, 5), (9, 9), (11, 12)]
    assert _runs([7]) == [(7, 7)] and _runs([]) == []


def _batch(session: str, seqs: list[int], probes=(), dropped=()) -> PreparedBatch:
    return PreparedBatch(session=session, seqs=tuple(seqs),
                         samples_json=tuple(orjson.dumps({"seq": s}) for s in seqs),
                         probes=tuple(probes), dropped=tuple(dropped), sent_client=1.0,
                         sent_wall_ms=1_700_000_000_000)


def _at(seconds: float) -> Arrival:
    return Arrival(mono_ns=round(seconds * S), wall_ns=1_700_000_000 * S + round(seconds * S))


def test_gaps_drops_and_late_seqs(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 1 << 20)
    assert ingest.batch(_batch("s", [2, 3]), _at(1)) == (3, 2, 0)  # no gap before the first
    assert ingest.batch(_batch("s", [4, 7, 8, 11]), _at(2)) == (4, 4, 0)
    assert ingest.batch(_batch("s", [5, 6, 7]), _at(3)) == (8, 2, 1)  # 5, 6 late; 7 again
    # 9..10 declared dropped, twice: one drop event; then nothing is missing
    assert ingest.batch(_batch("s", [12], dropped=[(9, 10)]), _at(4)) == (12, 1, 0)
    assert ingest.batch(_batch("s", [], dropped=[(9, 10)]), _at(5)) == (12, 0, 0)
    writer.close()
    session = Session.open(tmp_path / "s")
    events = [(e["kind"], e["first"], e["last"]) for e in session.events()
              if e["kind"] in ("gap", "drop")]
    assert events == [("gap", 5, 6), ("gap", 9, 10), ("drop", 9, 10)]
    assert [r["seq"] for r in session.state_records()] == [2, 3, 4, 7, 8, 11, 5, 6, 12]
    stats = ingest.stats(round(5 * S))
    assert (stats.batches, stats.samples_stored, stats.duplicates) == (5, 9, 1)
    assert stats.stored_through == 12


def test_clock_offset_of_the_least_delayed_probe(tmp_path):
    """offset = ((t1 - t0) + (t2 - t3)) / 2 and delay = (t3 - t0) - (t2 - t1), in ns; a
    probe sent again is stored once; an equally fast later probe does not replace it."""
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 1 << 20)
    assert ingest.stats(0).clock_offset_ns is None
    slow = (1.0, 3 * S, 3 * S + 500, 1.5)  # delay 499_999_500, offset 1_750_000_250
    ingest.batch(_batch("s", [0], probes=[slow]), _at(10))
    assert ingest.stats(10 * S).clock_offset_ns == 1_750_000_250
    fast = (2.0, 4 * S, 4 * S, 2.25)  # delay 250_000_000, offset 1_875_000_000
    slower = (3.0, 5 * S, 5 * S, 3.75)  # delay 750_000_000
    as_fast = (4.0, 7 * S, 7 * S, 4.25)  # delay 250_000_000, offset 2_875_000_000
    ingest.batch(_batch("s", [1], probes=[slow, fast, slower, as_fast]), _at(11))
    assert ingest.stats(11 * S).clock_offset_ns == 1_875_000_000
    writer.close()
    probes = [r["t0"] for r in Session.open(tmp_path / "s").sync_records()
              if r["kind"] == "probe"]
    assert probes == [1.0, 2.0, 3.0, 4.0]


def test_sample_rate_over_five_seconds_and_connection_timeout(tmp_path):
    """Samples that arrived in the last 5 s (inclusive) over the time since the first
    arrival, at least 1 s and at most 5 s; connected until 5 s of silence."""
    ingest = Ingest(SessionWriter.create(tmp_path, "s"), 1 << 20)
    stats = ingest.stats(10 * S)
    assert stats.samples_per_s == 0.0 and not stats.plugin_connected
    assert stats.last_arrival_mono_ns is None
    ingest.batch(_batch("s", list(range(60))), _at(10))
    assert ingest.stats(round(10.5 * S)).samples_per_s == pytest.approx(60.0)  # over at least 1 s
    assert ingest.stats(12 * S).samples_per_s == pytest.approx(30.0)  # 60 over 2 s
    ingest.batch(_batch("s", list(range(60, 120))), _at(12))
    ingest.batch(_batch("s", list(range(120, 150))), _at(15))
    stats = ingest.stats(15 * S)
    assert stats.samples_per_s == pytest.approx(150 / 5)  # the batch 5 s ago still counts
    assert stats.last_arrival_mono_ns == 15 * S and stats.plugin_connected
    assert ingest.stats(16 * S).samples_per_s == pytest.approx(90 / 5)  # the first one left
    assert ingest.stats(20 * S - 1).plugin_connected
    assert not ingest.stats(20 * S).plugin_connected


def test_failed_and_closed_writes_become_refusals(tmp_path):
    """A failed write is a 507 the plugin must not retry, a closed session a 409."""
    with pytest.raises(RefusedError) as refused, _refusing_failed_writes():
        raise StorageError("no space left on device.")
    assert (refused.value.status, refused.value.code) == (507, "storage_failed")
    assert str(refused.value) == ("the receiver cannot store anything more: no space left on "
                                  "device. Stop sending; this recording has stopped")
    with pytest.raises(RefusedError) as refused, _refusing_failed_writes():
        raise SessionError("session s is closed")
    assert (refused.value.status, refused.value.code, str(refused.value)) == (
        409, "session_closed", "session s is closed")
    writer = SessionWriter.create(tmp_path, "s")
    ingest = Ingest(writer, 1 << 20)
    writer.close()
    with pytest.raises(RefusedError) as refused:
        ingest.batch(_batch("s", [0]), _at(1))
    assert (refused.value.status, refused.value.code) == (409, "session_closed")
    assert str(refused.value) == ("session 's' is finished; start a new recording and send "
                                  "hello again")
    with pytest.raises(RefusedError) as refused:
        ingest.batch(_batch("other", [0]), _at(1))
    assert (refused.value.status, refused.value.code, refused.value.path) == (
        404, "unknown_session", "session")
