"""Receiver throughput and latency on loopback, against the floor: a bare aiohttp handler
that only parses the JSON body.

A load client in its own process posts synthetic batches over one keep-alive connection,
either paced (N batches/s, the plugin's way) or back to back (the most it can take), and
measures each batch's round trip. Both servers get the same bodies in the same run.

    python benchmarks/receiver.py [--seconds 3] [--recording-seconds 30]

The last run is the receiver inside a real recording: `Recording` captures a 1280x720
Xvfb screen at 60 fps (video encoded as it goes) while the client posts 10 batches/s of 60
samples; the floor takes the same load in the same process at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import http.client
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson
from aiohttp import web

from capture import ReceiverThread, Recording, SessionWriter, synthetic_sample
from capture._xvfb import start_xvfb

# (label, batches per second or None for back to back, samples per batch)
LEVELS = [
    ("10 batch/s x 6 (60 Hz play)", 10.0, 6),
    ("10 batch/s x 100", 10.0, 100),
    ("10 batch/s x 1024", 10.0, 1024),
    ("back to back x 1024", None, 1024),
]


def _bodies(session: str, per_batch: int, count: int, first_seq: int) -> list[bytes]:
    template = [synthetic_sample(i, 100.0 + i / 60) for i in range(per_batch)]
    bodies = []
    for b in range(count):
        base = first_seq + b * per_batch
        samples = [{**s, "seq": base + i} for i, s in enumerate(template)]
        bodies.append(orjson.dumps({
            "schema": "stpe.sample/1", "session": session, "seq_first": base,
            "samples": samples, "sent_client": 200.0, "sent_wall_ms": 1_700_000_000_000}))
    return bodies


def load(port: int, session: str, per_batch: int, rate: float | None, seconds: float,
         first_seq: int) -> tuple[int, float, list[int]]:
    """Runs in the client process: (samples sent, elapsed s, round trips in ns)."""
    count = int(seconds * rate) if rate else max(int(seconds * 60_000 / per_batch), 20)
    bodies = _bodies(session, per_batch, count, first_seq)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    latencies: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds
    for i, body in enumerate(bodies):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elif time.perf_counter() > deadline and i >= 10:
            break
        t0 = time.perf_counter_ns()
        conn.request("POST", "/v1/samples", body, headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter_ns() - t0)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(latencies) * per_batch, elapsed, latencies


class FloorServer:
    """The floor: aiohttp with a handler that parses the JSON and answers, nothing else."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        async def samples(request: web.Request) -> web.Response:
            batch = orjson.loads(await request.read())
            return web.Response(body=orjson.dumps({"stored_through": batch["seq_first"]}),
                                content_type="application/json")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/samples", samples)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> FloorServer:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()


def _summary(result: tuple[int, float, list[int]]) -> tuple[float, float, float]:
    samples, elapsed, latencies = result
    ms = sorted(x / 1e6 for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return samples / elapsed, statistics.median(ms), p99


def _percentile(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def while_recording(client: concurrent.futures.ProcessPoolExecutor, seconds: float) -> None:
    """10 batches/s of 60 samples into a recording of a 1280x720 screen at 60 fps."""
    import os

    screen = start_xvfb(1280, 720)
    os.environ["DISPLAY"] = screen.display
    try:
        with tempfile.TemporaryDirectory() as tmp, FloorServer() as floor, \
                Recording(Path(tmp), fps=60, monitor=1, port=0) as rec:
            session = rec.path.name
            ours = client.submit(load, int(rec.url.rsplit(":", 1)[1]), session, 60, 10.0,
                                 seconds, 0)
            base = client.submit(load, floor.port, "bench", 60, 10.0, seconds, 0)
            mine, theirs = ours.result(), base.result()  # one after the other, both recording
            status = rec.status()
    finally:
        screen.stop()
    print(f"\nwhile recording 1280x720 at 60 fps for {seconds:g} s (achieved {status.fps:.1f} "
          f"fps, {status.drops} drops, {status.samples} samples stored):")
    for label, (_, _, latencies) in (("receiver", mine), ("floor", theirs)):
        ms = [x / 1e6 for x in latencies]
        print(f"  {label:8} 10 batch/s x 60: p50 {statistics.median(ms):6.2f} ms  p99 "
              f"{_percentile(ms, 0.99):6.2f} ms  p99.9 {_percentile(ms, 0.999):6.2f} ms  "
              f"max {max(ms):6.2f} ms  ({len(ms)} batches)")
    ratio = _percentile([x / 1e6 for x in mine[2]], 0.99) / _percentile(
        [x / 1e6 for x in theirs[2]], 0.99)
    print(f"  p99 ratio receiver / floor: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per level and server")
    parser.add_argument("--recording-seconds", type=float, default=30.0,
                        help="the run while recording (0 skips it)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as client, \
            SessionWriter.create(Path(tmp), "bench") as writer, \
            ReceiverThread(writer, port=0) as ours, FloorServer() as floor:
        client.submit(time.sleep, 0).result()  # start the client process outside timings
        next_seq = 0
        for label, rate, per_batch in LEVELS:
            mine = client.submit(load, ours.port, "bench", per_batch, rate, args.seconds,
                                 next_seq).result()
            next_seq += mine[0] + per_batch
            base = client.submit(load, floor.port, "bench", per_batch, rate, args.seconds,
                                 0).result()
            rows.append((label, _summary(mine), _summary(base)))
        stored = ours.stats.samples_stored
    print(f"{'load':30} {'receiver samples/s':>19} {'floor samples/s':>16} {'ratio':>6}   "
          f"{'receiver p50/p99 ms':>20} {'floor p50/p99 ms':>17}")
    for label, (rate_m, p50_m, p99_m), (rate_f, p50_f, p99_f) in rows:
        print(f"{label:30} {rate_m:19,.0f} {rate_f:16,.0f} {rate_m / rate_f:6.2f}   "
              f"{p50_m:9.2f} / {p99_m:7.2f} {p50_f:8.2f} / {p99_f:6.2f}")
    print(f"receiver stored {stored} samples (each validated, stamped, deduplicated, written)")
    if args.recording_seconds > 0:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as client:
            client.submit(time.sleep, 0).result()
            while_recording(client, args.recording_seconds)


if __name__ == "__main__":
    main()
