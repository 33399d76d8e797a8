"""A simulated Roblox Studio plugin that speaks wire protocol v1 exactly as the Luau plugin
does: hello, NTP-style clock probes, batches at ~10 Hz of samples taken at ~60 Hz, retries
with exponential backoff from a bounded buffer, and bye. What it does on each answer is
the client state machine of `capture._client_spec`, which the plugin's tests follow too:
it retries hello with backoff, says hello again when the receiver is lost (a restart, a
404), joins the running recording and reports the outage.

It runs its sender on its own thread with a plain `http.client` connection, so it can feed
a receiver running in the same process without sharing its event loop. Its client clock has
a configurable offset and drift relative to the host, which gives alignment tests known truth.
"""

from __future__ import annotations

import collections
import gzip
import http.client
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from capture import _client_spec as spec
from capture._errors import PluginError
from capture._guard import TOKEN_HEADER
from capture._store import read_jsonl, tool_version
from capture._synthetic import VIEWPORT, synthetic_sample
from capture._wire import HELLO_SCHEMA, MAX_PROBES, MAX_SAMPLES_PER_BATCH, SAMPLE_SCHEMA

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ClientClock:
    """The plugin's `os.clock()`: `offset_s + (1 + drift_ppm / 1e6) * host seconds since
    origin`. Truth for alignment: host_mono_ns = origin_ns + (client - offset_s) * 1e9 /
    (1 + drift_ppm / 1e6)."""

    origin_ns: int
    offset_s: float = 100.0
    drift_ppm: float = 0.0

    def at(self, host_mono_ns: int) -> float:
        return self.offset_s + (host_mono_ns - self.origin_ns) / 1e9 * (1 + self.drift_ppm / 1e6)

    def now(self) -> float:
        return self.at(time.perf_counter_ns())


@dataclass(frozen=True)
class _Answer:
    """One request's outcome: the HTTP status (None when none came) and the reply."""

    status: int | None
    body: dict[str, Any]
    text: str

    @property
    def event(self) -> spec.Event:
        error = self.body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return spec.classify(self.status, code)


class SimulatedPlugin:
    """Feeds a running receiver at `url` with samples from `submit()`, `play()` or `replay()`.

    ``with SimulatedPlugin(rx.url) as plugin: plugin.play(2.0)`` says hello, sends two
    seconds of synthetic play at 60 Hz in ~10 Hz batches, then flushes and says bye.
    """

    def __init__(self, url: str, *, token: str | None = None, batch_hz: float = 10.0,
                 buffer_limit: int = 4096, max_batch: int = MAX_SAMPLES_PER_BATCH,
                 clock_offset_s: float = 100.0, clock_drift_ppm: float = 0.0,
                 probe_every: int = 5, compress: bool = False, timeout_s: float = 5.0,
                 session: str | None = None, connect_timeout_s: float = 10.0,
                 viewport: tuple[float, float] = VIEWPORT) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise PluginError(f"receiver url {url!r} is not an http:// url; "
                              "use e.g. http://127.0.0.1:34873")
        if batch_hz <= 0 or buffer_limit < 1 or not 1 <= max_batch <= MAX_SAMPLES_PER_BATCH:
            raise PluginError(f"batch_hz={batch_hz}, buffer_limit={buffer_limit}, "
                              f"max_batch={max_batch}: need batch_hz > 0, buffer_limit >= 1 "
                              f"and 1 <= max_batch <= {MAX_SAMPLES_PER_BATCH}")
        self._address = (parsed.hostname, parsed.port or 80)
        self._token = token
        self._interval = 1 / batch_hz
        self._buffer_limit = buffer_limit
        self._max_batch = max_batch
        self._probe_every = max(probe_every, 1)
        self._compress = compress
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s
        self._wanted_session = session
        self._viewport = viewport
        self.clock = ClientClock(time.perf_counter_ns(), clock_offset_s, clock_drift_ppm)
        self._lock = threading.Lock()
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._dropped_ranges: list[dict[str, int]] = []
        self._probes: list[dict[str, float | int]] = []
        self._last_seq = -1
        self._conn: http.client.HTTPConnection | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._give_up_at: float | None = None
        self._state: spec.State = "hello"
        self._backoff = spec.BACKOFF_INITIAL_S
        self._outage: dict[str, Any] | None = None
        self.session: str | None = None
        self.sessions: list[str] = []  # every session joined, in order
        self.next_seq = 0  # the receiver's next_seq at the first hello: where a Play starts
        self.outages = 0
        self.error: str | None = None  # why it stopped, when the receiver made it stop
        self.stored_through = -1
        self.dropped = 0
        self.batches = 0
        self.retries = 0
        self.rejected = 0

    # --- the game side ---------------------------------------------------------------------

    def submit(self, sample: dict[str, Any]) -> None:
        """Queue one sample (thread-safe). Seqs must increase; when the buffer is full the
        oldest queued sample is discarded and reported to the receiver as dropped."""
        seq = sample.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise PluginError(f"sample seq {seq!r} is not a non-negative integer")
        with self._lock:
            if seq <= self._last_seq:
                raise PluginError(f"sample seq {seq} does not follow {self._last_seq}; "
                                  "seqs must strictly increase")
            self._last_seq = seq
            self._buffer.append(sample)
            if len(self._buffer) > self._buffer_limit:
                self._drop(self._buffer.popleft()["seq"])

    def _drop(self, seq: int) -> None:
        self.dropped += 1
        ranges = self._dropped_ranges
        if ranges and ranges[-1]["last"] == seq - 1:
            ranges[-1]["last"] = seq
        else:
            ranges.append({"first": seq, "last": seq})

    def play(self, seconds: float, rate: float = 60.0, first_seq: int = 0) -> int:
        """Submit synthetic samples at `rate` Hz of real time for `seconds`; returns the count."""
        count = round(seconds * rate)
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.submit(synthetic_sample(first_seq + i, self.clock.now(),
                                         wall_ms=time.time_ns() // 1_000_000, dt=1 / rate))
        return count

    def replay(self, state_jsonl: Path, *, speed: float = 1.0) -> int:
        """Submit the samples of a recorded state.jsonl, paced by their client times."""
        samples = sorted((r["sample"] for r in read_jsonl(Path(state_jsonl))),
                         key=lambda s: s["seq"])
        return self._paced(samples, speed)

    def _paced(self, samples: Iterable[dict[str, Any]], speed: float) -> int:
        count, start, t_first = 0, time.perf_counter(), None
        for sample in samples:
            t_first = sample["t"] if t_first is None else t_first
            delay = start + (sample["t"] - t_first) / speed - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.submit(sample)
            count += 1
        return count

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> SimulatedPlugin:
        """Say hello, retrying with backoff for up to `connect_timeout_s` (raises PluginError
        if the receiver refuses or stays unreachable), and start sending."""
        if self._thread is not None:
            raise PluginError("the simulated plugin is already started")
        self._give_up_at = time.monotonic() + self._connect_timeout
        while self._state == "hello":
            if not self._hello():
                self._close()
                raise PluginError(f"hello to http://{self._address[0]}:{self._address[1]} "
                                  f"failed ({self.error}); is `stpe record` running?")
        self._give_up_at = None
        self._thread = threading.Thread(target=self._send_loop, name="stpe-simplugin",
                                        daemon=True)
        self._thread.start()
        return self

    def _hello(self) -> bool:
        """One hello and its transition; False when the client stopped or gave up."""
        hello = {"schema": HELLO_SCHEMA, "plugin_version": f"sim-{tool_version()}",
                 "place_name": "Simulated place", "datamodel": "simulated",
                 "viewport": list(self._viewport), "client_clock": self.clock.now(),
                 "wall_ms": time.time_ns() // 1_000_000, "session": self._wanted_session}
        if self._outage is not None:
            hello["outage"] = self._outage
        answer = self._call("/v1/hello", hello)
        return self._follow(answer)

    def _follow(self, answer: _Answer) -> bool:
        """Apply the spec's transition for `answer`; False when the client stops."""
        self._state, action = spec.step(self._state, answer.event)
        if action == "adopt":
            if not self.sessions:  # the first hello of this Play: its seqs start here
                self.next_seq = answer.body.get("next_seq", 0)
            self.session = answer.body["session"]
            self.sessions.append(self.session)
            self._outage = None
            self._backoff = spec.BACKOFF_INITIAL_S
        elif action == "settle":
            self._backoff = spec.BACKOFF_INITIAL_S
        elif action == "backoff":
            give_up_at = self._give_up_at
            if give_up_at is not None and time.monotonic() + self._backoff > give_up_at:
                self.error = answer.text
                self._state = "stopped"
                return False
            self.retries += 1
            time.sleep(self._backoff)
            self._backoff = spec.next_backoff(self._backoff)
        elif action == "outage":
            logger.info("lost the receiver (%s); saying hello again", answer.text)
            if self._outage is None:
                self.outages += 1
                self._outage = {"since_client": self.clock.now(),
                                "since_wall_ms": time.time_ns() // 1_000_000,
                                "session": self.session, "stored_through": self.stored_through}
        elif action == "discard":
            self._backoff = spec.BACKOFF_INITIAL_S
        elif action == "report":
            logger.error("the receiver stopped this plugin: %s", answer.text)
            self.error = answer.text
            return False
        return True

    def stop(self, reason: str = "stopped") -> None:
        """Send what is buffered (giving up after the timeout), say bye. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._give_up_at = time.monotonic() + self._timeout
        self._stopping.set()
        thread.join()
        if self._state == "sending":
            answer = self._call("/v1/bye", {"session": self.session, "reason": reason,
                                            "last_seq": self._last_seq})
            if answer.status != 200:
                logger.warning("bye was not delivered: %s", answer.text)
        self._close()

    def __enter__(self) -> SimulatedPlugin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the sender ------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            stopping = self._stopping.wait(self._interval)
            while True:  # send everything queued, a batch at a time
                with self._lock:
                    count = min(len(self._buffer), self._max_batch)
                    samples = [self._buffer.popleft() for _ in range(count)]
                    owed = bool(self._dropped_ranges)
                if not samples and not (stopping and owed):
                    break
                if not self._deliver(samples):
                    return
            if stopping:
                return

    def _deliver(self, samples: list[dict[str, Any]]) -> bool:
        """Send one batch until acknowledged or refused, saying hello again whenever the
        spec says so; False when the client stops (refused for good, or giving up on stop)."""
        if self.batches % self._probe_every == 0:
            self._probe()
        while True:
            if self._state == "hello":
                if not self._hello():
                    return False
                continue
            with self._lock:
                dropped = [dict(r) for r in self._dropped_ranges[:MAX_PROBES]]
                probes = list(self._probes[:MAX_PROBES])
            body = {"schema": SAMPLE_SCHEMA, "session": self.session,
                    "seq_first": samples[0]["seq"] if samples else self._last_seq + 1,
                    "samples": samples, "sent_client": self.clock.now(),
                    "sent_wall_ms": time.time_ns() // 1_000_000, "probes": probes,
                    "dropped": dropped}
            answer = self._call("/v1/samples", body)
            event = answer.event
            if not self._follow(answer):
                return False
            if event == "ok":
                self.batches += 1
                self.stored_through = answer.body["stored_through"]
            elif event == "refused":
                logger.error("batch of %d samples refused: %s", len(samples), answer.text)
                self.rejected += len(samples)
            else:
                continue
            with self._lock:
                del self._dropped_ranges[:len(dropped)]
                del self._probes[:len(probes)]
            return True

    def _probe(self) -> None:
        t0 = self.clock.now()
        answer = self._call("/v1/sync", {"session": self.session, "t0": t0})
        if answer.status != 200:
            logger.info("clock probe failed: %s", answer.text)
            return
        t3 = self.clock.now()
        with self._lock:
            self._probes.append({"t0": t0, "t1_ns": answer.body["t1_ns"],
                                 "t2_ns": answer.body["t2_ns"], "t3": t3})

    def _call(self, path: str, payload: dict[str, Any]) -> _Answer:
        """POST JSON; the status (None when no answer came) and the parsed reply."""
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        if self._compress:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        if self._token is not None:
            headers[TOKEN_HEADER] = self._token
        if self._conn is None:
            self._conn = http.client.HTTPConnection(*self._address, timeout=self._timeout)
        try:
            self._conn.request("POST", path, body=body, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            return _Answer(None, {}, f"{path}: {exc}")
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            reply = None
        text = f"{path}: HTTP {response.status} {data[:300]!r}"
        return _Answer(response.status, reply if isinstance(reply, dict) else {}, text)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
