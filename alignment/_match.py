"""Frame <-> sample matching: per frame the nearest sample, the bracketing pair and the
interpolation weight at the frame's content time, or the decoded sample exactly.

Everything is vectorised (`np.searchsorted`); times are host_mono nanoseconds as float64.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def match_frames(content_ns: np.ndarray, sample_host_ns: np.ndarray, *,
                 tolerance_ms: float = 50.0,
                 decoded: np.ndarray | None = None) -> Matching:
    """Match frames (content times) to samples (host times, in seq order).

    `decoded` holds, per frame, the sample index its timecode named or -1; those frames take
    that sample exactly. A frame whose residual exceeds `tolerance_ms` is unmatched."""
    content = np.asarray(content_ns, np.float64)
    host = np.asarray(sample_host_ns, np.float64)
    sorted_order = None
    if host.size > 1 and not bool(np.all(host[1:] >= host[:-1])):
        sorted_order = np.argsort(host, kind="stable")
        host = host[sorted_order]
    n = host.size
    idx = np.searchsorted(host, content)
    lo = np.clip(idx - 1, 0, n - 1)
    hi = np.clip(idx, 0, n - 1)
    h_lo, h_hi = host[lo], host[hi]
    nearest = np.where(content - h_lo <= h_hi - content, lo, hi)
    span = h_hi - h_lo
    weight = np.where(span > 0, np.clip((content - h_lo) / np.where(span > 0, span, 1.0), 0, 1),
                      0.0)
    if sorted_order is not None:
        lo, hi, nearest = sorted_order[lo], sorted_order[hi], sorted_order[nearest]
        host = np.asarray(sample_host_ns, np.float64)
    method = np.full(content.shape, CLOCK, np.int8)
    if decoded is not None:
        tc = np.asarray(decoded) >= 0
        nearest = np.where(tc, decoded, nearest)
        lo, hi = np.where(tc, decoded, lo), np.where(tc, decoded, hi)
        weight = np.where(tc, 0.0, weight)
        method[tc] = TIMECODE
    residual = (content - host[nearest]) / 1e6
    unmatched = ~(np.abs(residual) <= tolerance_ms)
    method[unmatched] = NONE
    return Matching(np.where(unmatched, -1, nearest), lo, hi, weight,
                    np.where(unmatched, np.nan, residual), method)


def unwrap_payload(payload: np.ndarray, expected_seq: np.ndarray, bits: int = 24) -> np.ndarray:
    """Full seqs from `seq mod 2**bits` payloads, choosing the wrap nearest `expected_seq`."""
    period = 1 << bits
    payload = np.asarray(payload, np.int64)
    expected = np.asarray(expected_seq, np.int64)
    return payload + period * np.round((expected - payload) / period).astype(np.int64)
