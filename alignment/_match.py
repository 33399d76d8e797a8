"""Frame <-> sample matching: per frame the nearest sample, the bracketing pair and the
interpolation weight at the frame's content time, or the decoded sample exactly.

Everything is vectorised (`np.searchsorted`); times are host_mono nanoseconds as float64.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

NONE, CLOCK, TIMECODE = 0, 1, 2
METHODS = ("none", "clock", "timecode")


@dataclass(frozen=True)
class Matching:
    """Per frame: sample indices (into the seq-sorted state), weight of `right`, residual
    (content time minus the nearest sample's host time, ms) and the method code."""

    nearest: np.ndarray  # int64, -1 when unmatched
    left: np.ndarray  # int64
    right: np.ndarray  # int64
    weight: np.ndarray  # float64 in [0, 1]; 0 for timecode frames
    residual_ms: np.ndarray  # float64, NaN when unmatched
    method: np.ndarray  # int8: NONE, CLOCK, TIMECODE

    @property
    def matched(self) -> np.ndarray:
        return self.method != NONE


def match_frames(match_ns: np.ndarray, sample_host_ns: np.ndarray, *,
                 tolerance_ms: float = 50.0, decoded: np.ndarray | None = None,
                 content_ns: np.ndarray | None = None) -> Matching:
    """Match frames to samples (host times, in seq order).

    The nearest sample to `match_ns` (see `content_times`) is the frame's sample; the
    bracketing pair and weight, and the residual, are taken at `content_ns` (default
    `match_ns`), where the state is interpolated. `decoded` holds, per frame, the sample
    index its timecode named or -1; those frames take that sample exactly, whatever their
    residual (the picture shows that sample: a large residual means the screen held it
    longer than usual, not that the pairing is off). Any other frame whose |residual|
    exceeds `tolerance_ms` is unmatched."""
    at = np.asarray(match_ns, np.float64)
    reference = at if content_ns is None else np.asarray(content_ns, np.float64)
    host = np.asarray(sample_host_ns, np.float64)
    order = None
    if host.size > 1 and not bool(np.all(host[1:] >= host[:-1])):
        order = np.argsort(host, kind="stable")
        host = host[order]
    last = host.size - 1
    idx = np.searchsorted(host, at)
    below, above = np.clip(idx - 1, 0, last), np.clip(idx, 0, last)
    nearest = np.where(at - host[below] <= host[above] - at, below, above)
    lo = np.clip(np.searchsorted(host, reference, side="right") - 1, 0, last)
    hi = np.clip(lo + (reference > host[lo]), 0, last)
    span = host[hi] - host[lo]
    weight = np.where(span > 0, np.clip((reference - host[lo]) / np.where(span > 0, span, 1.0),
                                        0, 1), 0.0)
    if order is not None:
        lo, hi, nearest = order[lo], order[hi], order[nearest]
        host = np.asarray(sample_host_ns, np.float64)
    method = np.full(at.shape, CLOCK, np.int8)
    if decoded is not None:
        tc = np.asarray(decoded) >= 0
        nearest = np.where(tc, decoded, nearest)
        lo, hi = np.where(tc, decoded, lo), np.where(tc, decoded, hi)
        weight = np.where(tc, 0.0, weight)
        method[tc] = TIMECODE
    residual = (reference - host[nearest]) / 1e6
    unmatched = ~(np.abs(residual) <= tolerance_ms) & (method != TIMECODE)
    method[unmatched] = NONE
    return Matching(np.where(unmatched, -1, nearest), lo, hi, weight,
                    np.where(unmatched, np.nan, residual), method)


def _intervals(host: np.ndarray) -> np.ndarray:
    """Each sample's render interval (to the next sample; the last repeats the previous)."""
    if host.size < 2:
        return np.zeros(host.size)
    d = np.diff(host)
    return np.r_[d, d[-1]]


def render_intervals(host: np.ndarray, segment: np.ndarray | None = None) -> np.ndarray:
    """Each sample's render interval within its clock segment (to the next sample; the last
    of a segment takes the segment's median, 0 for a single sample)."""
    host = np.asarray(host, np.float64)
    if segment is None:
        return _intervals(host)
    out = np.zeros(host.size)
    for s in np.unique(segment):
        rows = np.flatnonzero(segment == s)
        if rows.size > 1:
            d = np.diff(host[rows])
            out[rows] = np.r_[d, np.median(d)]
    return out


def display_latency(grab_ns: np.ndarray, sample_host_ns: np.ndarray, decoded: np.ndarray,
                    intervals: np.ndarray | None = None) -> tuple[float, float]:
    """Display latency (ns) from frames whose shown sample is known, and its half-width.

    A frame grabbed at G shows sample k only if G - latency lies in [H_k, H_k+1): each such
    frame bounds the latency to (G - H_k+1, G - H_k]. The estimate is the middle of the
    intersection of those bounds (1 % quantiles, for noise in the clock) and the half-width
    half that intersection; if they do not intersect, the median of the bounds' midpoints
    and half their interquartile range. `intervals` are the samples' render intervals
    (default: to the next sample)."""
    host = np.asarray(sample_host_ns, np.float64)
    known = np.asarray(decoded) >= 0
    k = np.asarray(decoded)[known]
    d = np.asarray(grab_ns, np.float64)[known] - host[k]
    step = _intervals(host) if intervals is None else np.asarray(intervals, np.float64)
    lower = d - step[k]
    low, high = float(np.percentile(lower, 99)), float(np.percentile(d, 1))
    if low <= high:
        return (low + high) / 2, (high - low) / 2
    middles = (lower + d) / 2
    q1, q3 = np.percentile(middles, [25, 75])
    return float(np.median(middles)), float(q3 - q1) / 2


def content_times(grab_ns: np.ndarray, latency_ns: float, sample_host_ns: np.ndarray,
                  intervals: np.ndarray | None = None) -> np.ndarray:
    """The time each frame is matched at (host ns): grab time minus the display latency is
    the latest moment the shown sample can have been rendered; moving back by half that
    render interval centres the frame on the sample it shows, so the nearest sample is the
    one on screen even when the frame rate varies. `intervals` (see `render_intervals`)
    keep a gap between Plays from counting as a render interval."""
    upper = np.asarray(grab_ns, np.float64) - latency_ns
    host = np.asarray(sample_host_ns, np.float64)
    if host.size < 2:
        return upper
    step = _intervals(host) if intervals is None else np.asarray(intervals, np.float64)
    if not bool(np.all(host[1:] >= host[:-1])):
        order = np.argsort(host, kind="stable")
        host, step = host[order], step[order]
    # a frame grabbed at (numerically) the render time itself shows that sample
    slack = 1e-4 * (host[-1] - host[0]) / (host.size - 1)
    k = np.clip(np.searchsorted(host, upper + slack, side="right") - 1, 0, host.size - 1)
    step_k, previous = step[k], step[np.maximum(k - 1, 0)]
    half = step_k / 2
    centred = upper - half
    low = host[k] - previous / 2 + 1e-3 * step_k
    high = host[k] + half - 1e-3 * step_k
    inside = (upper >= host[0]) & (upper < host[-1] + step[-1])
    return np.where(inside, np.clip(centred, low, high), centred)


def unwrap_payload(payload: np.ndarray, expected_seq: np.ndarray, bits: int = 24) -> np.ndarray:
    """Full seqs from `seq mod 2**bits` payloads, choosing the wrap nearest `expected_seq`."""
    period = 1 << bits
    payload = np.asarray(payload, np.int64)
    expected = np.asarray(expected_seq, np.int64)
    return payload + period * np.round((expected - payload) / period).astype(np.int64)


def restrict_to_span(m: Matching, content_ns: np.ndarray, sample_host_ns: np.ndarray,
                     segment: np.ndarray, intervals: np.ndarray) -> Matching:
    """Unmatch clock frames whose content time lies outside their segment's sampled span
    (first sample to last sample plus one render interval), and keep every interpolation
    pair inside one segment (no state is blended across Plays)."""
    host = np.asarray(sample_host_ns, np.float64)
    content = np.asarray(content_ns, np.float64)
    count = int(segment.max()) + 1
    first = np.full(count, np.inf)
    end = np.full(count, -np.inf)
    np.minimum.at(first, segment, host)
    np.maximum.at(end, segment, host + intervals)
    clock = m.method == CLOCK
    seg = segment[np.where(clock, m.nearest, 0)]
    outside = clock & ~((content >= first[seg]) & (content < end[seg]))
    split = segment[m.left] != segment[m.right]
    method = np.where(outside, NONE, m.method).astype(np.int8)
    return replace(m, nearest=np.where(outside, -1, m.nearest),
                   right=np.where(split, m.left, m.right),
                   weight=np.where(split, 0.0, m.weight),
                   residual_ms=np.where(outside, np.nan, m.residual_ms), method=method)
