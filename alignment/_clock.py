"""The clock model: the plugin's client seconds (`os.clock()`) to host_mono nanoseconds.

`host_mono = a + b * client`, fitted per segment (a client clock reset or jump starts a new
one). With clock probes: minimum-delay selection per time window, then a Theil-Sen line
through the probe midpoints; the midpoint of a probe can be wrong by at most half its round
trip (the unknown up/down asymmetry), reported as `asymmetry_bound_ms`. Without probes: the
lower envelope of (client send time, host arrival) from the batch anchors and the samples,
which over-estimates the offset by the smallest transport delay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from alignment._errors import AlignmentError

logger = logging.getLogger(__name__)

RESET_JUMP_S = 1.0  # client time running this much ahead of host time starts a segment
MIN_FIT_POINTS = 8  # below this many fitted points the drift's uncertainty is the prior
DRIFT_PRIOR_PPM = 100.0  # 1 sigma: PC crystal clocks are specified within +-50..100 ppm
STAMP_NOISE_S = 20e-6  # the least residual scale: client and host stamping and scheduling
ENVELOPE_DELAY_PRIOR_MS = 5.0  # the smallest delivery delay on loopback stays below this
_MAX_WINDOWS = 200
_ENVELOPE_BINS = 2000

FitMethod = Literal["probes", "envelope"]
# Student's t 97.5 % quantile over 1.96, by degrees of freedom: a standard error from n - 2
# degrees of freedom is widened so that 2 of them cover 95 % as with many points
_T_DOF = np.array([1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30])
_T_WIDEN = np.array([12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.31, 2.23, 2.13, 2.09, 2.04]) / 1.96


@dataclass(frozen=True)
class ClockSegment:
    """One continuous stretch of client clock and its fit `host_ns = origin_host_ns +
    1e9 * (intercept_s + rate * (client - origin_client))`."""

    client_start: float
    client_end: float
    host_start_ns: int
    origin_client: float
    origin_host_ns: int
    intercept_s: float
    rate: float
    method: FitMethod
    points: int
    points_used: int
    offset_std_ms: float
    drift_std_ppm: float
    asymmetry_bound_ms: float | None
    reference_client: float

    @property
    def drift_ppm(self) -> float:
        """How much faster host time runs than client time, in parts per million."""
        return (self.rate - 1.0) * 1e6

    @property
    def offset_ms(self) -> float:
        """host_mono minus client time at `reference_client` (the fitted points' centre,
        where `offset_std_ms` holds), in ms."""
        host_s = self.origin_host_ns / 1e9 + self.intercept_s + self.rate * (
            self.reference_client - self.origin_client)
        return (host_s - self.reference_client) * 1e3

    def to_host_ns(self, client: np.ndarray, origin_ns: int = 0) -> np.ndarray:
        """Host_mono ns (float64) of client times (s), minus `origin_ns` (keep the result
        small so float64 keeps sub-microsecond precision)."""
        rel = self.intercept_s + self.rate * (np.asarray(client, np.float64) - self.origin_client)
        return (self.origin_host_ns - origin_ns) + rel * 1e9

    def summary(self) -> dict[str, Any]:
        return {"client_start": self.client_start, "client_end": self.client_end,
                "method": self.method, "offset_ms": self.offset_ms, "drift_ppm": self.drift_ppm,
                "offset_std_ms": self.offset_std_ms, "drift_std_ppm": self.drift_std_ppm,
                "asymmetry_bound_ms": self.asymmetry_bound_ms,
                "reference_client": self.reference_client, "points": self.points,
                "points_used": self.points_used}


@dataclass(frozen=True)
class ClockModel:
    """The fitted segments, in host order; `segment_of` assigns samples to them."""

    segments: tuple[ClockSegment, ...]

    @property
    def main(self) -> ClockSegment:
        """The longest segment, whose offset and drift the report quotes."""
        return max(self.segments, key=lambda s: s.client_end - s.client_start)

    def to_host_ns(self, client: np.ndarray, segment: np.ndarray,
                   origin_ns: int = 0) -> np.ndarray:
        """Host_mono ns of client times (minus `origin_ns`), each through the fit of its
        segment index."""
        client = np.asarray(client, np.float64)
        out = np.empty(client.shape, np.float64)
        for i, seg in enumerate(self.segments):
            mask = segment == i
            out[mask] = seg.to_host_ns(client[mask], origin_ns)
        return out


def split_segments(client: np.ndarray, arrival_ns: np.ndarray,
                   play_starts: np.ndarray | None = None) -> np.ndarray:
    """Segment index per sample (in Play then seq order): a new segment starts where the
    client time goes backwards or runs more than `RESET_JUMP_S` ahead of the arrival times,
    and at every sample `play_starts` marks (the first stored sample of a Play)."""
    client = np.asarray(client, np.float64)
    if client.size == 0:
        return np.zeros(0, np.int64)
    d_client = np.diff(client)
    d_host = np.diff(np.asarray(arrival_ns, np.int64)) / 1e9
    breaks = (d_client < 0) | (d_client - np.maximum(d_host, 0) > RESET_JUMP_S)
    if play_starts is not None:
        breaks |= np.asarray(play_starts, bool)[1:]
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int64)


def theil_sen(x: np.ndarray, y: np.ndarray, max_points: int = 1500) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line (median of pairwise slopes)."""
    if x.size > max_points:  # evenly thinned: the median slope barely changes
        keep = np.linspace(0, x.size - 1, max_points).astype(np.int64)
        x, y = x[keep], y[keep]
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    ok = dx > 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 1.0
    return slope, float(np.median(y - slope * x))


def _uncertainty(x: np.ndarray, residual: np.ndarray) -> tuple[float, float]:
    """Offset (at the data's centre, ms) and drift (ppm) standard errors. The residual
    scale is the larger of the robust one (1.4826 MAD) and the plain standard deviation
    (the fastest-probe residuals are skewed, so MAD alone understates it), never under the
    stamping noise; with fewer than `MIN_FIT_POINTS` points the drift's is at least the
    prior `DRIFT_PRIOR_PPM` (a few points can sit exactly on a line)."""
    n = x.size
    if n < 3:
        sigma = STAMP_NOISE_S
        offset = max(float(np.abs(residual).max()) if n else 0.0, sigma)
        return offset * 1e3, DRIFT_PRIOR_PPM
    spread = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))),
                 float(np.std(residual, ddof=2)), STAMP_NOISE_S)
    sigma = spread * np.sqrt(n / (n - 2)) * float(np.interp(n - 2, _T_DOF, _T_WIDEN))
    sxx = float(np.sum((x - x.mean()) ** 2))
    drift = float(sigma / np.sqrt(sxx) * 1e6) if sxx > 0 else DRIFT_PRIOR_PPM
    if n < MIN_FIT_POINTS:
        drift = max(drift, DRIFT_PRIOR_PPM)
    return float(sigma / np.sqrt(n) * 1e3), drift


def _with_prior(rate: float, drift_std_ppm: float) -> tuple[float, float]:
    """The drift combined with the prior 0 +- `DRIFT_PRIOR_PPM` (precision-weighted): a
    long segment keeps its own, a short one leans on the prior instead of a wild slope."""
    prior, own = DRIFT_PRIOR_PPM ** 2, drift_std_ppm ** 2
    weight = prior / (prior + own)
    return 1.0 + weight * (rate - 1.0), float(np.sqrt(prior * own / (prior + own)))


def _min_delay(x: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Indices of the smallest-delay probe of each client-time window."""
    windows = int(np.clip(x.size // 4, min(x.size, 3), _MAX_WINDOWS))
    edges = np.linspace(x.min(), x.max(), windows + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, windows - 1)
    order = np.lexsort((delay, which))
    first = np.r_[True, which[order][1:] != which[order][:-1]]
    return np.sort(order[first])


def fit_probes(t0: np.ndarray, t1_ns: np.ndarray, t2_ns: np.ndarray, t3: np.ndarray,
               *, client_range: tuple[float, float], host_start_ns: int) -> ClockSegment:
    """Fit one segment from NTP-style probes (client t0/t3 s, host t1/t2 ns)."""
    t1_ns, t2_ns = np.asarray(t1_ns, np.int64), np.asarray(t2_ns, np.int64)
    x = (np.asarray(t0, np.float64) + np.asarray(t3, np.float64)) / 2
    origin_client, origin_host_ns = float(x[0]), int(t1_ns[0])
    y = ((t1_ns - origin_host_ns) + (t2_ns - t1_ns) / 2) / 1e9
    delay = (np.asarray(t3) - np.asarray(t0)) - (t2_ns - t1_ns) / 1e9
    keep = _min_delay(x, delay)
    xs = x[keep] - origin_client
    rate, intercept = theil_sen(xs, y[keep])
    _, drift_std = _uncertainty(xs, y[keep] - intercept - rate * xs)
    rate, drift_std = _with_prior(rate, drift_std)
    intercept = float(np.median(y[keep] - rate * xs))
    offset_std, _ = _uncertainty(xs, y[keep] - intercept - rate * xs)
    # each fitted midpoint is off by at most half its round trip; the line follows the
    # majority of them, so the 75th percentile of those halves bounds it
    bound = float(np.percentile(np.maximum(delay[keep], 0), 75)) / 2 * 1e3
    return ClockSegment(client_range[0], client_range[1], host_start_ns, origin_client,
                        origin_host_ns, intercept, rate, "probes", int(x.size), int(keep.size),
                        offset_std, drift_std, bound, origin_client + float(xs.mean()))


def _lower_hull(x: np.ndarray, y: np.ndarray) -> list[int]:
    hull: list[int] = []
    for k in range(x.size):
        while len(hull) >= 2:
            i, j = hull[-2], hull[-1]
            if (x[j] - x[i]) * (y[k] - y[i]) - (y[j] - y[i]) * (x[k] - x[i]) <= 0:
                hull.pop()
            else:
                break
        hull.append(k)
    return hull


def fit_envelope(client: np.ndarray, arrival_ns: np.ndarray, *,
                 client_range: tuple[float, float], host_start_ns: int) -> ClockSegment:
    """Fit one segment from (client send time, host arrival) pairs: the lower convex hull's
    edge under the mean client time (every delay >= 0, total delay minimal)."""
    client = np.asarray(client, np.float64)
    arrival_ns = np.asarray(arrival_ns, np.int64)
    origin_client, origin_host_ns = float(client.min()), int(arrival_ns.min())
    x = client - origin_client
    y = (arrival_ns - origin_host_ns) / 1e9
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    bins = np.minimum((x / (x[-1] or 1.0) * _ENVELOPE_BINS).astype(np.int64), _ENVELOPE_BINS - 1)
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    # the least-delayed point of each bin: host minus client time (the rates differ by at
    # most ~100 ppm), not the earliest arrival, which the clocks' advance would favour
    delay = y - x
    best = np.array([s + int(np.argmin(delay[s:e])) for s, e in
                     zip(starts, np.r_[starts[1:], x.size], strict=True)])
    bx, by = x[best], y[best]
    hull = _lower_hull(bx, by)
    if len(hull) == 1:
        rate, intercept = 1.0, float(by[hull[0]] - bx[hull[0]])
    else:
        hx = bx[hull]
        k = int(np.clip(np.searchsorted(hx, x.mean()) - 1, 0, len(hull) - 2))
        i, j = hull[k], hull[k + 1]
        rate = float((by[j] - by[i]) / (bx[j] - bx[i]))
        intercept = float(by[i] - rate * bx[i])
    _, drift_std = _uncertainty(bx, by - intercept - rate * bx)
    if len(hull) > 1:
        rate, drift_std = _with_prior(rate, drift_std)
        intercept = float(np.min(by - rate * bx))  # every delay >= 0 under the line
    offset_std, _ = _uncertainty(bx, by - intercept - rate * bx)
    return ClockSegment(client_range[0], client_range[1], host_start_ns, origin_client,
                        origin_host_ns, intercept, rate, "envelope", int(client.size),
                        int(best.size), offset_std, drift_std, ENVELOPE_DELAY_PRIOR_MS,
                        origin_client + float(bx.mean()))


def _within(client: np.ndarray, host_ns: np.ndarray,
            window: tuple[float, float, int, int]) -> np.ndarray:
    lo, hi, host_lo, host_hi = window
    return (client >= lo) & (client <= hi) & (host_ns >= host_lo) & (host_ns < host_hi)


def fit_clock(sample_client: np.ndarray, sample_arrival_ns: np.ndarray,
              sync: list[dict[str, Any]],
              play_starts: np.ndarray | None = None) -> tuple[ClockModel, np.ndarray]:
    """Fit the clock model from the samples (in Play then seq order) and the sync log;
    `play_starts` marks the first stored sample of each Play (see `split_segments`).

    Returns the model and each sample's segment index."""
    client = np.asarray(sample_client, np.float64)
    arrival = np.asarray(sample_arrival_ns, np.int64)
    if client.size == 0:
        raise AlignmentError("the state log holds no samples, so there is no clock to fit; "
                             "record a session with the plugin running")
    segment = split_segments(client, arrival, play_starts)
    probes = [r for r in sync if r.get("kind") == "probe"]
    anchors = [r for r in sync if r.get("kind") == "anchor" and r.get("client") is not None
               and r.get("arrival_mono_ns") is not None]
    p_t0 = np.array([p["t0"] for p in probes], np.float64)
    p_t1 = np.array([p["t1_ns"] for p in probes], np.int64)
    p_t2 = np.array([p["t2_ns"] for p in probes], np.int64)
    p_t3 = np.array([p["t3"] for p in probes], np.float64)
    a_client = np.array([a["client"] for a in anchors], np.float64)
    a_arrival = np.array([a["arrival_mono_ns"] for a in anchors], np.int64)
    count = int(segment[-1]) + 1
    starts = [int(arrival[segment == i].min()) for i in range(count)]
    bounds = [*starts[1:], int(np.iinfo(np.int64).max)]
    segments = []
    for i in range(count):
        mask = segment == i
        lo, hi = float(client[mask].min()), float(client[mask].max())
        margin = max(RESET_JUMP_S, 0.05 * (hi - lo))
        host_lo = starts[i] if i else int(np.iinfo(np.int64).min)
        window = (lo - margin, hi + margin, host_lo, bounds[i])
        pm = _within(p_t0, p_t1, window)
        if pm.sum() >= 2:
            seg = fit_probes(p_t0[pm], p_t1[pm], p_t2[pm], p_t3[pm], client_range=(lo, hi),
                             host_start_ns=starts[i])
        else:
            am = _within(a_client, a_arrival, window)
            seg = fit_envelope(np.r_[client[mask], a_client[am]], np.r_[arrival[mask],
                               a_arrival[am]], client_range=(lo, hi), host_start_ns=starts[i])
        logger.info("clock segment %d: %s fit, offset %.3f ms, drift %.1f ppm", i, seg.method,
                    seg.offset_ms, seg.drift_ppm)
        segments.append(seg)
    return ClockModel(tuple(segments)), segment
