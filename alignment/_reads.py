"""Timecode reads checked against the clock and against each other (docs/timecode.md).

A read names a sample; it is kept only when that sample can be the one on screen: the
frame's grab time minus the display latency must fall in the sample's render interval
(within a bound the fit gives), and the kept seqs must not run backwards in frame order
within a clock segment. Anything else is a misread: counted, dropped, and the frame falls
back to the clock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from alignment._match import display_latency, render_intervals, unwrap_payload

TIMING_NOISE_NS = 2e6  # grab-stamp and render-stamp noise allowed beyond the fit's bounds
_SCREEN_SIGMAS = 5.0  # this many robust deviations from the median
_HELD_INTERVALS = 3.0  # at least: a frame held this many render intervals (a hitch) is kept


@dataclass(frozen=True)
class CheckedReads:
    """Per frame the state row its read names and that passed the checks, or -1; the
    latency (ns) and half-width the kept reads give; how many reads were rejected."""

    rows: np.ndarray
    latency_ns: float | None
    latency_bound_ns: float | None
    rejected: int


def candidate_rows(payload: np.ndarray, grab_ns: np.ndarray, sample_host: np.ndarray,
                   seqs: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per frame the state row whose seq its payload names, or -1. Seqs are looked up inside
    each clock segment (rows of a segment are contiguous, seqs sorted within it), and among
    segments holding the seq, the one whose sample time is nearest the grab wins (older
    sessions restart seqs at 0 in each Play)."""
    payload = np.asarray(payload, np.int64)
    grab = np.asarray(grab_ns, np.float64)
    best = np.full(payload.size, -1, np.int64)
    best_gap = np.full(payload.size, np.inf)
    read = payload >= 0
    for s in np.unique(segment):
        rows = np.flatnonzero(segment == s)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        host, seq = sample_host[lo:hi], seqs[lo:hi]
        near = np.clip(np.searchsorted(host, grab), 0, host.size - 1)
        full = unwrap_payload(payload, seq[near])
        pos = np.clip(np.searchsorted(seq, full), 0, seq.size - 1)
        ok = read & (seq[pos] == full)
        gap = np.abs(grab - host[pos])
        better = ok & (gap < best_gap)
        best = np.where(better, lo + pos, best)
        best_gap = np.where(better, gap, best_gap)
    return best


def _non_decreasing(values: np.ndarray) -> np.ndarray:
    """Mask of a longest non-decreasing subsequence of `values` (patience sorting)."""
    tails: list[int] = []
    tail_at: list[int] = []
    parent = np.full(values.size, -1, np.int64)
    for i, v in enumerate(values.tolist()):
        k = bisect.bisect_right(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = v, i
        parent[i] = tail_at[k - 1] if k else -1
    keep = np.zeros(values.size, bool)
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep[i] = True
        i = int(parent[i])
    return keep


def onset_latency(grab_ns: np.ndarray, sample_host: np.ndarray,
                  rows: np.ndarray) -> tuple[float, float] | None:
    """The mean delay from a sample's render to its first appearance on screen (ns) and the
    95 % half-width of that mean, from the frames where a new sample appears: the sample
    was not on screen at the previous grab and is at this one, so its delay lies between
    the two grabs minus its render time. The half-width is twice the standard error plus
    half the median grab interval: a recorder grabbing near the display's refresh rate
    keeps a slowly wandering phase against it, an error averaging does not remove. None
    with fewer than 2 such frames."""
    read = np.flatnonzero(rows >= 0)
    if read.size < 3:
        return None
    prev, cur = read[:-1], read[1:]
    change = (cur == prev + 1) & (rows[cur] > rows[prev])
    if change.sum() < 2:
        return None
    k = rows[cur[change]]
    host = np.asarray(sample_host, np.float64)
    grab = np.asarray(grab_ns, np.float64)
    mid = (grab[cur[change]] + grab[prev[change]]) / 2 - host[k]
    spread = max(float(np.std(mid, ddof=1)), 1e3)
    phase = float(np.median(grab[cur[change]] - grab[prev[change]])) / 2
    return float(np.mean(mid)), 2.0 * spread / np.sqrt(mid.size) + phase


def check_reads(candidates: np.ndarray, grab_ns: np.ndarray, sample_host: np.ndarray,
                segment: np.ndarray, clock_std_ns: np.ndarray) -> CheckedReads:
    """Keep the reads consistent with the clock and with their neighbours.

    Each read's delay `G - H_k` (grab minus the named sample's host time) less half the
    sample's render interval is its latency interval's centre; a read is kept when that
    centre lies within 5 scaled MADs (at least 3 median render intervals: a hitch holds a
    frame on screen) of the reads' median, plus 4 times its segment's clock offset standard
    error, plus 2 ms of stamping noise; then only the longest run of
    non-decreasing seqs (in frame order) of each segment is kept. The latency is then
    measured from the kept reads (`onset_latency`; `display_latency` when too few frames
    show a new sample)."""
    rows = np.asarray(candidates, np.int64)
    grab = np.asarray(grab_ns, np.float64)
    host = np.asarray(sample_host, np.float64)
    read = np.flatnonzero(rows >= 0)
    if read.size == 0:
        return CheckedReads(rows, None, None, 0)
    k = rows[read]
    intervals = render_intervals(host, segment)
    mid = grab[read] - host[k] - intervals[k] / 2
    centre = float(np.median(mid))
    spread = 1.4826 * float(np.median(np.abs(mid - centre)))
    hold = _HELD_INTERVALS * float(np.median(intervals[k]))
    tol = (max(_SCREEN_SIGMAS * spread, hold)
           + 4 * np.asarray(clock_std_ns, np.float64)[segment[k]] + TIMING_NOISE_NS)
    ok = np.abs(mid - centre) <= tol
    for s in np.unique(segment[k[ok]]):
        inside = np.flatnonzero(ok & (segment[k] == s))
        ok[inside[~_non_decreasing(k[inside])]] = False
    kept = np.full(rows.size, -1, np.int64)
    kept[read[ok]] = k[ok]
    onset = onset_latency(grab, host, kept)
    if onset is None:
        onset = display_latency(grab[read[ok]], host, k[ok], intervals)
    return CheckedReads(kept, onset[0], onset[1], int((~ok).sum()))
