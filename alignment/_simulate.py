"""A simulated capture with known truth, for tests, benchmarks and demos.

Render steps at a wandering rate (54-65 fps by default) on the host clock; the client clock
runs with an offset and a drift (and may reset). What the screen shows is simulated as a
display pipeline, not as the aligner's model of it: each frame is submitted after a
jittered GPU time, presented at the next vertical blank (double buffering: of two frames
ready for the same blank only the later is ever shown; without vsync it is presented at
once and a grab can catch a tear), then reaches the screen the compositor's delay later;
the recorder grabs at its own rate, jittered, skipping some ticks. `latency_ms` is the mean
of the whole render-to-screen delay. Batches arrive late (one arrival per batch, and all
at once after a receiver gap); probes see asymmetric, jittered delays. `true_seq` is the
sample each grab really shows (`tear_seq` the newer one above a tear, else -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOST_ORIGIN_NS = 5_000_000_000_000
WALL_OFFSET_NS = 1_700_000_000_000_000_000 - HOST_ORIGIN_NS
CLIENT_ORIGIN_S = 100.0


@dataclass(frozen=True)
class SimulatedCapture:
    """Every stream as arrays. Host times are host_mono ns."""

    seq: np.ndarray
    client_t: np.ndarray
    render_ns: np.ndarray  # true host time of each render step
    arrival_ns: np.ndarray
    wall_ms: np.ndarray
    probe_t0: np.ndarray
    probe_t1_ns: np.ndarray
    probe_t2_ns: np.ndarray
    probe_t3: np.ndarray
    anchor_client: np.ndarray
    anchor_arrival_ns: np.ndarray
    grab_start_ns: np.ndarray
    grab_end_ns: np.ndarray
    frame_wall_ns: np.ndarray
    dropped_before: np.ndarray
    true_seq: np.ndarray
    tear_seq: np.ndarray  # the sample above a tear line through the strip, else -1
    screen_ns: np.ndarray  # per sample: when it reached the screen, -1 if it never did
    rate: float  # host seconds per client second
    reset_ns: int | None

    def client_of(self, host_ns: np.ndarray) -> np.ndarray:
        """The client clock at host times (the truth the clock model should recover)."""
        return _client_of(host_ns, self.rate, self.reset_ns)


def _client_of(host_ns: np.ndarray, rate: float, reset_ns: int | None) -> np.ndarray:
    host_s = (np.asarray(host_ns, np.float64) - HOST_ORIGIN_NS) / 1e9
    client = CLIENT_ORIGIN_S + host_s / rate
    if reset_ns is not None:
        reset_s = (reset_ns - HOST_ORIGIN_NS) / 1e9
        client = np.where(np.asarray(host_ns) >= reset_ns, 1.0 + (host_s - reset_s) / rate,
                          client)
    return client


def _display(render: np.ndarray, rng: np.random.Generator, latency_ms: float,
              gpu_ms: float, vsync_hz: float | None) -> tuple[np.ndarray, np.ndarray]:
    """When each shown frame reaches the screen (host ns, increasing) and its sample index:
    GPU time (exponential), the next vertical blank (random phase) or at once without
    vsync, double buffering, then a fixed compositor delay that makes the mean total
    `latency_ms`."""
    ready = render + rng.exponential(gpu_ms * 1e6, render.size)
    if vsync_hz is None:
        present, wait = ready, 0.0
    else:
        period = 1e9 / vsync_hz
        phase = rng.uniform(0, period)
        present = np.ceil((ready - phase) / period) * period + phase
        wait = period / 2
    compositor = max(latency_ms * 1e6 - gpu_ms * 1e6 - wait, 0.0)
    present = np.maximum.accumulate(present)  # a frame never overtakes an earlier one
    last = np.r_[present[1:] != present[:-1], True]  # double buffering: the later one shows
    index = np.flatnonzero(last)
    return present[index] + compositor, index


def simulate_capture(duration_s: float = 20.0, *, fps_range: tuple[float, float] = (54, 65),
                     grab_fps: float = 60.0, drift_ppm: float = 100.0, latency_ms: float = 25.0,
                     probe_hz: float = 4.0, delay_up_ms: float = 2.0, delay_down_ms: float = 0.5,
                     jitter_ms: float = 3.0, drop_fraction: float = 0.02,
                     reset_at_s: float | None = None,
                     receiver_gap_s: tuple[float, float] | None = None, batch_hz: float = 10.0,
                     gpu_ms: float = 2.0, vsync_hz: float | None = 60.0,
                     tear_fraction: float = 0.0, reply_next_frame: bool = False,
                     seed: int = 0) -> SimulatedCapture:
    """Simulate `duration_s` seconds of capture (see the module docstring);
    `reply_next_frame`: a probe's reply is read at the plugin's next render step."""
    rng = np.random.default_rng(seed)
    rate = 1.0 + drift_ppm * 1e-6
    n_est = int(duration_s * fps_range[1] * 1.1) + 10
    phase = np.linspace(0, 2 * np.pi * duration_s / 7.0, n_est)
    fps = fps_range[0] + (fps_range[1] - fps_range[0]) * (0.5 + 0.5 * np.sin(phase))
    steps = 1e9 / fps * (1 + rng.normal(0, 0.03, n_est))
    render = HOST_ORIGIN_NS + np.cumsum(steps).astype(np.int64)
    render = render[render < HOST_ORIGIN_NS + duration_s * 1e9]
    n = render.size
    reset_ns = None if reset_at_s is None else int(HOST_ORIGIN_NS + reset_at_s * 1e9)
    client = _client_of(render, rate, reset_ns)

    batch_every = int(1e9 / batch_hz)
    sent = (render - HOST_ORIGIN_NS) // batch_every * batch_every + batch_every + HOST_ORIGIN_NS
    batches = np.unique(sent)
    batch_arrival = batches + (1e6 * (delay_up_ms + rng.exponential(jitter_ms, batches.size)))
    # the receiver stamps a batch once: all its samples share the arrival
    arrival = batch_arrival.astype(np.int64)[np.searchsorted(batches, sent)]
    if receiver_gap_s is not None:
        lo, hi = (int(HOST_ORIGIN_NS + s * 1e9) for s in receiver_gap_s)
        arrival = np.where((arrival >= lo) & (arrival < hi), hi + arrival - lo + 1_000_000,
                           arrival)
        arrival = np.maximum.accumulate(arrival)
    probes = np.arange(HOST_ORIGIN_NS, render[-1], int(1e9 / probe_hz), dtype=np.int64)
    up = (1e6 * (delay_up_ms + rng.exponential(jitter_ms, probes.size))).astype(np.int64)
    down = (1e6 * (delay_down_ms + rng.exponential(jitter_ms, probes.size))).astype(np.int64)
    t1 = probes + up
    t2 = t1 + 100_000
    back = t2 + down
    if reply_next_frame:  # the plugin sees the reply only at its next render step
        back = render[np.minimum(np.searchsorted(render, back), n - 1)]
    t0, t3 = _client_of(probes, rate, reset_ns), _client_of(back, rate, reset_ns)
    whole = t3 >= t0  # a probe spanning a clock reset is refused by the receiver

    ticks = np.arange(HOST_ORIGIN_NS + 0.05e9, render[-1], 1e9 / grab_fps)
    keep = rng.random(ticks.size) >= drop_fraction
    kept = np.flatnonzero(keep)
    dropped_before = np.diff(np.r_[-1, kept]) - 1
    grab = (ticks[kept] + rng.normal(0, 0.3e6, kept.size)).astype(np.int64)
    on_screen, shown = _display(render, rng, latency_ms, gpu_ms, vsync_hz)
    screen = np.full(n, -1, np.int64)
    screen[shown] = on_screen.astype(np.int64)
    at = np.searchsorted(on_screen, grab, side="right") - 1
    true_seq = np.where(at >= 0, shown[np.maximum(at, 0)], -1)
    # without vsync a grab within 1 ms of a flip can catch the strip torn between frames
    tear = np.full(grab.size, -1, np.int64)
    if vsync_hz is None and tear_fraction > 0:
        nxt = np.minimum(at + 1, shown.size - 1)
        near_flip = (on_screen[nxt] - grab < 1e6) & (at + 1 < shown.size)
        torn = near_flip & (rng.random(grab.size) < tear_fraction)
        tear = np.where(torn, shown[nxt], -1)
    valid = true_seq >= 0
    return SimulatedCapture(
        seq=np.arange(n, dtype=np.int64), client_t=client, render_ns=render,
        arrival_ns=arrival, wall_ms=(render + WALL_OFFSET_NS) // 1_000_000,
        probe_t0=t0[whole], probe_t1_ns=t1[whole], probe_t2_ns=t2[whole], probe_t3=t3[whole],
        anchor_client=_client_of(batches, rate, reset_ns),
        anchor_arrival_ns=batch_arrival.astype(np.int64), grab_start_ns=grab[valid],
        grab_end_ns=grab[valid] + 3_000_000, frame_wall_ns=grab[valid] + WALL_OFFSET_NS,
        dropped_before=dropped_before[valid], true_seq=true_seq[valid],
        tear_seq=tear[valid], screen_ns=screen, rate=rate,
        reset_ns=reset_ns)
