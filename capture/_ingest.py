"""What the receiver does with a valid request: deduplicate by seq, stamp, append to the
session's logs, and keep the running statistics.

A request is stored as one unit (`SessionWriter.append_together`): its seqs count as stored
only once all of its lines are written, so a failed write acknowledges nothing and a retry
stores the batch again.

`Ingest` is driven by one worker thread at a time (the receiver's ordered writer), so log
lines stay in arrival order; its statistics are read from any thread under a lock.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from capture import _layout as layout
from capture._errors import SessionError, StorageError
from capture._guard import RefusedError, decode_body, parse
from capture._layout import PluginInfo
from capture._store import SessionWriter, event_line, tool_version
from capture._validate import PreparedBatch
from capture._wire import Bye, ByeReply, Hello, HelloReply, SyncRequest

_RATE_WINDOW_NS = 5_000_000_000
_PROBE_MEMORY = 4096
_CONNECTED_NS = 5_000_000_000  # a plugin silent for longer counts as disconnected
QUIET_PLAY_NS = 30_000_000_000  # a Play silent for longer is closed (its bye may never come)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    """host_mono and host_wall at the moment a request's body was read."""

    mono_ns: int
    wall_ns: int


@dataclass(frozen=True)
class ReceiverStats:
    """A snapshot of what the receiver has stored so far."""

    batches: int
    samples_stored: int
    duplicates: int
    stored_through: int
    last_arrival_mono_ns: int | None
    samples_per_s: float
    clock_offset_ns: int | None
    plugin_connected: bool


class SeqLedger:
    """The seqs already settled (stored, or declared dropped by the plugin) as sorted,
    disjoint, non-adjacent ranges; a healthy session is one range however long it runs."""

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []

    @property
    def stored_through(self) -> int:
        """The end of the first run: the highest seq with no gap before it, -1 if none."""
        return self._lasts[0] if self._lasts else -1

    @property
    def highest(self) -> int:
        return self._lasts[-1] if self._lasts else -1

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self._firsts, seq) - 1
        return i >= 0 and seq <= self._lasts[i]

    def copy(self) -> SeqLedger:
        twin = SeqLedger()
        twin._firsts, twin._lasts = list(self._firsts), list(self._lasts)
        return twin

    def covers(self, first: int, last: int) -> bool:
        i = bisect.bisect_right(self._firsts, first) - 1
        return i >= 0 and last <= self._lasts[i]

    def add(self, first: int, last: int) -> None:
        """Settle the range [first, last], merging with the ranges it touches."""
        if self._lasts and first == self._lasts[-1] + 1:  # the common case: extend the run
            self._lasts[-1] = max(self._lasts[-1], last)
            return
        lo = bisect.bisect_left(self._lasts, first - 1)
        hi = bisect.bisect_right(self._firsts, last + 1)
        if lo < hi:
            first = min(first, self._firsts[lo])
            last = max(last, self._lasts[hi - 1])
        self._firsts[lo:hi] = [first]
        self._lasts[lo:hi] = [last]


def _storage_refusal(failure: StorageError) -> RefusedError:
    return RefusedError(507, "storage_failed",
                        f"the receiver cannot store anything more: {failure} Stop sending; "
                        "this recording has stopped")


@contextlib.contextmanager
def _refusing_failed_writes() -> Iterator[None]:
    """A failed write (nothing kept) is a 507 the plugin must not retry; a closed
    session a 409."""
    try:
        yield
    except StorageError as exc:
        raise _storage_refusal(exc) from None
    except SessionError as exc:
        raise RefusedError(409, "session_closed", str(exc)) from None


def _outage_events(hello: Hello) -> list[bytes]:
    """An `outage` event for a hello that rejoins after losing the receiver: the span the
    plugin could not deliver, on its own clocks."""
    outage = hello.outage
    if outage is None:
        return []
    return [event_line("outage", since_client=outage.since_client,
                       until_client=hello.client_clock,
                       span_s=max(hello.client_clock - outage.since_client, 0.0),
                       since_wall_ms=outage.since_wall_ms, until_wall_ms=hello.wall_ms,
                       previous_session=outage.session,
                       previous_stored_through=outage.stored_through)]


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of increasing seqs: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


class Ingest:
    """Turns validated requests into appended log lines for one session."""

    def __init__(self, writer: SessionWriter, max_body_bytes: int) -> None:
        self._writer = writer
        self._limit = max_body_bytes
        self._ledger = SeqLedger()
        self._lock = threading.Lock()
        self._seen_probes: collections.OrderedDict[tuple[float, int], None] = (
            collections.OrderedDict())
        self._rate: collections.deque[tuple[int, int]] = collections.deque()
        self._batches = 0
        self._stored = 0
        self._duplicates = 0
        self._last_arrival: int | None = None
        self._best_probe: tuple[int, int] | None = None  # (delay_ns, offset_ns)
        self._connected = False
        self._first_arrival: int | None = None
        self._plays: set[str] = set()
        self._open_play: str | None = None  # the Play whose end is not recorded yet

    @property
    def session_id(self) -> str:
        return self._writer.session_id

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def sync(self, body: bytes, encoding: str) -> SyncRequest:
        """Validate a clock probe (answered by the receiver, stored with the next batch)."""
        request = parse(SyncRequest, decode_body(body, encoding, self._limit))
        self._check_session(request.session)
        return request

    def _check_session(self, session: str | None) -> None:
        if session is not None and session != self._writer.session_id:
            raise RefusedError(404, "unknown_session",
                          f"session {session!r} is not recording here; the receiver records "
                          f"{self._writer.session_id!r}: send hello again to join it",
                          "session")

    def _writing(self) -> SessionWriter:
        if self._writer.failure is not None:
            raise _storage_refusal(self._writer.failure)
        if self._writer.closed:
            raise RefusedError(409, "session_closed",
                          f"session {self._writer.session_id!r} is finished; start a new "
                          "recording and send hello again")
        return self._writer

    def hello(self, body: bytes, encoding: str, arrival: Arrival) -> HelloReply:
        hello = parse(Hello, decode_body(body, encoding, self._limit))
        self._check_session(hello.session)
        writer = self._writing()
        plugin = PluginInfo(plugin_version=hello.plugin_version, place_id=hello.place_id,
                            place_name=hello.place_name, datamodel=hello.datamodel,
                            viewport=hello.viewport)
        next_seq = self._ledger.highest + 1
        new_play = hello.play is not None and hello.play not in self._plays
        anchor = {"kind": "anchor", "client": hello.client_clock, "wall_ms": hello.wall_ms,
                  "arrival_mono_ns": arrival.mono_ns, "arrival_wall_ns": arrival.wall_ns}
        events = [event_line("hello", plugin_version=hello.plugin_version,
                             datamodel=hello.datamodel, place_id=hello.place_id,
                             play=hello.play),
                  *_outage_events(hello)]
        if new_play:
            events.append(event_line("play", play=hello.play, first_seq=next_seq,
                                     datamodel=hello.datamodel))
        with _refusing_failed_writes():
            writer.update_manifest(plugin=plugin)
            if new_play:
                self._end_play("next_play")
            writer.append_together([(layout.SYNC, [orjson.dumps(anchor)]),
                                    (layout.EVENTS, events)])
        if new_play:
            self._plays.add(hello.play)
            self._open_play = hello.play
        with self._lock:
            self._connected = True
            self._last_arrival = arrival.mono_ns
        return HelloReply(session=writer.session_id, receiver_version=tool_version(),
                          stored_through=self._ledger.stored_through, next_seq=next_seq)

    def _end_play(self, reason: str) -> None:
        """Record the end of the open Play (bye, a new Play, or silence), once."""
        play, self._open_play = self._open_play, None
        if play is not None:
            self._writer.append_event("play_end", play=play, reason=reason,
                                      last_seq=self._ledger.highest)

    def close_quiet(self, now_mono_ns: int) -> bool:
        """Close the open Play when nothing arrived for QUIET_PLAY_NS; returns whether."""
        with self._lock:
            last = self._last_arrival
        if (self._open_play is None or self._writer.closed or last is None
                or now_mono_ns - last < QUIET_PLAY_NS):
            return False
        try:
            self._end_play("quiet")
        except (SessionError, StorageError):
            return False
        with self._lock:
            self._connected = False
        return True

    def bye(self, body: bytes, encoding: str, arrival: Arrival) -> ByeReply:
        bye = parse(Bye, decode_body(body, encoding, self._limit))
        self._check_session(bye.session)
        with _refusing_failed_writes():
            self._writing().append_event("bye", reason=bye.reason, last_seq=bye.last_seq)
            self._end_play("bye")
        with self._lock:
            self._connected = False
        return ByeReply(session=self._writer.session_id,
                        stored_through=self._ledger.stored_through)

    def batch(self, batch: PreparedBatch, arrival: Arrival) -> tuple[int, int, int]:
        """Store one validated batch; returns (stored_through, accepted, duplicates)."""
        self._check_session(batch.session)
        writer = self._writing()
        ledger = self._ledger.copy()  # the session's ledger changes only once all is written
        events: list[tuple[str, dict[str, int]]] = []
        for first, last in batch.dropped:
            if not ledger.covers(first, last):
                events.append(("drop", {"first": first, "last": last}))
                ledger.add(first, last)
        new_seqs: list[int] = []
        lines: list[bytes] = []
        head = b'{"arrival_mono_ns":%d,"arrival_wall_ns":%d,' % (arrival.mono_ns, arrival.wall_ns)
        highest = ledger.highest
        for seq, sample_json in zip(batch.seqs, batch.samples_json, strict=True):
            if seq <= highest and seq in ledger:
                continue
            new_seqs.append(seq)
            lines.append(head + b'"seq":%d,"sample":%s}' % (seq, sample_json))
        duplicates = len(batch.seqs) - len(new_seqs)
        for first, last in _runs(new_seqs):
            if 0 <= highest < first - 1:
                events.append(("gap", {"first": highest + 1, "last": first - 1}))
            ledger.add(first, last)
            highest = ledger.highest
        sync = [{"kind": "probe", "t0": t0, "t1_ns": t1, "t2_ns": t2, "t3": t3}
                for t0, t1, t2, t3 in batch.probes if self._new_probe(t0, t1)]
        sync.append({"kind": "anchor", "client": batch.sent_client,
                     "wall_ms": batch.sent_wall_ms, "arrival_mono_ns": arrival.mono_ns,
                     "arrival_wall_ns": arrival.wall_ns})
        with _refusing_failed_writes():
            writer.append_together([
                (layout.STATE, lines), (layout.SYNC, [orjson.dumps(r) for r in sync]),
                (layout.EVENTS, [event_line(kind, **fields) for kind, fields in events])])
        self._ledger = ledger
        self._account(arrival, len(new_seqs), duplicates, sync)
        if duplicates:
            logger.warning("%d samples of a batch (seq %d..%d) were already stored and were "
                           "dropped: a retried batch, or a Play that did not continue the "
                           "session's seqs", duplicates, batch.seqs[0], batch.seqs[-1])
        return ledger.stored_through, len(new_seqs), duplicates

    def _new_probe(self, t0: float, t1_ns: int) -> bool:
        key = (t0, t1_ns)
        if key in self._seen_probes:
            return False
        self._seen_probes[key] = None
        if len(self._seen_probes) > _PROBE_MEMORY:
            self._seen_probes.popitem(last=False)
        return True

    def _account(self, arrival: Arrival, stored: int, duplicates: int,
                 sync: list[dict[str, float | int | str]]) -> None:
        with self._lock:
            self._batches += 1
            self._stored += stored
            self._duplicates += duplicates
            self._last_arrival = arrival.mono_ns
            self._connected = True
            self._first_arrival = self._first_arrival or arrival.mono_ns
            self._rate.append((arrival.mono_ns, stored))
            while self._rate and self._rate[0][0] < arrival.mono_ns - _RATE_WINDOW_NS:
                self._rate.popleft()
            for record in sync:
                if record["kind"] != "probe":
                    continue
                t0_ns, t3_ns = record["t0"] * 1e9, record["t3"] * 1e9
                t1, t2 = record["t1_ns"], record["t2_ns"]
                delay = round((t3_ns - t0_ns) - (t2 - t1))
                offset = round(((t1 - t0_ns) + (t2 - t3_ns)) / 2)
                if self._best_probe is None or delay < self._best_probe[0]:
                    self._best_probe = (delay, offset)

    def stats(self, now_mono_ns: int) -> ReceiverStats:
        with self._lock:
            since = now_mono_ns - _RATE_WINDOW_NS
            recent = sum(n for t, n in self._rate if t >= since)
            ran_ns = now_mono_ns - (self._first_arrival or now_mono_ns)
            rate = recent / max(min(ran_ns, _RATE_WINDOW_NS), 1_000_000_000) * 1e9
            last = self._last_arrival
            connected = (self._connected and last is not None
                         and now_mono_ns - last < _CONNECTED_NS)
            return ReceiverStats(
                batches=self._batches, samples_stored=self._stored,
                duplicates=self._duplicates, stored_through=self._ledger.stored_through,
                last_arrival_mono_ns=last, samples_per_s=rate,
                clock_offset_ns=self._best_probe[1] if self._best_probe else None,
                plugin_connected=connected)
