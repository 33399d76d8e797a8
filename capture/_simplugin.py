"""A simulated Roblox Studio plugin that speaks wire protocol v1 exactly as the Luau plugin
does: hello, NTP-style clock probes, batches at ~10 Hz of samples taken at ~60 Hz, retries
with exponential backoff from a bounded buffer, and bye.

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

from capture._errors import PluginError
from capture._guard import TOKEN_HEADER
from capture._store import read_jsonl, tool_version
from capture._synthetic import VIEWPORT, synthetic_sample
from capture._wire import HELLO_SCHEMA, MAX_PROBES, MAX_SAMPLES_PER_BATCH, SAMPLE_SCHEMA

logger = logging.getLogger(__name__)

_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


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


class _RefusedError(Exception):
    """The receiver answered with a status the plugin must not retry."""


class SimulatedPlugin:
    """Feeds a running receiver at `url` with samples from `submit()`, `play()` or `replay()`.

    ``with SimulatedPlugin(rx.url) as plugin: plugin.play(2.0)`` says hello, sends two
    seconds of synthetic play at 60 Hz in ~10 Hz batches, then flushes and says bye.
    """

    def __init__(self, url: str, *, token: str | None = None, batch_hz: float = 10.0,
                 buffer_limit: int = 4096, max_batch: int = MAX_SAMPLES_PER_BATCH,
                 clock_offset_s: float = 100.0, clock_drift_ppm: float = 0.0,
                 probe_every: int = 5, compress: bool = False, timeout_s: float = 5.0,
                 session: str | None = None,
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
        self.session: str | None = None
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
        """Say hello (raises PluginError if the receiver refuses or is unreachable) and start
        sending."""
        if self._thread is not None:
            raise PluginError("the simulated plugin is already started")
        hello = {"schema": HELLO_SCHEMA, "plugin_version": f"sim-{tool_version()}",
                 "place_name": "Simulated place", "datamodel": "simulated",
                 "viewport": list(self._viewport), "client_clock": self.clock.now(),
                 "wall_ms": time.time_ns() // 1_000_000, "session": self._wanted_session}
        try:
            reply = self._call("/v1/hello", hello)
        except (OSError, _RefusedError) as exc:
            self._close()
            raise PluginError(f"hello to http://{self._address[0]}:{self._address[1]} failed "
                              f"({exc}); is `stpe record` running?") from None
        self.session = reply["session"]
        self.stored_through = reply["stored_through"]
        self._thread = threading.Thread(target=self._send_loop, name="stpe-simplugin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Send what is buffered (giving up after the timeout), say bye. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._give_up_at = time.monotonic() + self._timeout
        self._stopping.set()
        thread.join()
        try:
            self._call("/v1/bye", {"session": self.session, "reason": reason,
                                   "last_seq": self._last_seq})
        except (OSError, _RefusedError) as exc:
            logger.warning("bye was not delivered: %s", exc)
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
        """Send one batch until acknowledged or refused; False when giving up on stop."""
        if self.batches % self._probe_every == 0:
            self._probe()
        backoff = 0.05
        while True:
            with self._lock:
                dropped = [dict(r) for r in self._dropped_ranges[:MAX_PROBES]]
                probes = list(self._probes[:MAX_PROBES])
            body = {"schema": SAMPLE_SCHEMA, "session": self.session,
                    "seq_first": samples[0]["seq"] if samples else self._last_seq + 1,
                    "samples": samples,
                    "sent_client": self.clock.now(), "sent_wall_ms": time.time_ns() // 1_000_000,
                    "probes": probes, "dropped": dropped}
            try:
                reply = self._call("/v1/samples", body)
            except _RefusedError as exc:
                logger.error("batch of %d samples refused: %s", len(samples), exc)
                self.rejected += len(samples)
                reply = None
            except OSError as exc:
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() + backoff > give_up_at:
                    logger.warning("gave up sending %d samples: %s", len(samples), exc)
                    return False
                self.retries += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            with self._lock:
                del self._dropped_ranges[:len(dropped)]
                del self._probes[:len(probes)]
            if reply is not None:
                self.batches += 1
                self.stored_through = reply["stored_through"]
            return True

    def _probe(self) -> None:
        t0 = self.clock.now()
        try:
            reply = self._call("/v1/sync", {"session": self.session, "t0": t0})
        except (OSError, _RefusedError) as exc:
            logger.info("clock probe failed: %s", exc)
            return
        t3 = self.clock.now()
        with self._lock:
            self._probes.append({"t0": t0, "t1_ns": reply["t1_ns"], "t2_ns": reply["t2_ns"],
                                 "t3": t3})

    def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; a retryable failure raises OSError, a final refusal `_RefusedError`."""
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
            raise OSError(f"{path}: {exc}") from None
        if response.status in _RETRYABLE:
            raise OSError(f"{path}: HTTP {response.status} {data[:200]!r}")
        if response.status != 200:
            raise _RefusedError(f"{path}: HTTP {response.status} {data[:300]!r}")
        return orjson.loads(data)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
