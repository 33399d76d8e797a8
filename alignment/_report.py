"""The alignment report (alignment.json): coverage, residuals, clock, latency, timecode,
capture geometry, and the drops and gaps of both streams."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alignment._timecode import StripGeometry

logger = logging.getLogger(__name__)

ASPECT_TOLERANCE = 0.01
MAX_LISTED = 20  # gaps listed in the report; all are counted
RECEIVER_GAP_S = 1.0


@dataclass(frozen=True)
class AlignmentReport:
    """What `align_session` found; `to_dict()` is the content of alignment.json."""

    session: str
    frames: int
    matched: int
    coverage: float
    methods: dict[str, int]
    residual_ms: dict[str, float | None]
    tolerance_ms: float
    clock: dict[str, Any]
    latency_ms: float
    latency_source: str
    latency_bound_ms: float | None  # half-width of the interval the timecode allows
    timecode: dict[str, Any]
    capture_scale: tuple[float, float]
    capture_offset: tuple[float, float]
    frame_size: tuple[int, int]
    viewport: tuple[float, float]
    video: dict[str, Any]
    state: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def residual_stats(residual_ms: np.ndarray) -> dict[str, float | None]:
    """p50, p95 and max of |residual| over the matched frames (NaN = unmatched)."""
    r = np.abs(residual_ms[~np.isnan(residual_ms)])
    if r.size == 0:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": float(np.percentile(r, 50)), "p95": float(np.percentile(r, 95)),
            "max": float(r.max())}


def frame_gaps(grab_ns: np.ndarray, dropped_before: np.ndarray) -> dict[str, Any]:
    """Recorder drops (ticks skipped) and gaps (intervals over 1.5 x the median)."""
    d = np.diff(np.asarray(grab_ns, np.int64)) / 1e6
    median = float(np.median(d)) if d.size else 0.0
    big = np.flatnonzero(d > 1.5 * median) if d.size else np.zeros(0, np.int64)
    return {"fps": 1000.0 / median if median > 0 else None,
            "interval_ms": {"median": median, "max": float(d.max()) if d.size else None},
            "dropped": int(np.sum(dropped_before)), "gaps": int(big.size),
            "gap_list": [{"after_frame": int(i), "gap_ms": float(d[i])}
                         for i in big[:MAX_LISTED]]}


def state_gaps(seq: np.ndarray, arrival_ns: np.ndarray, segments: int) -> dict[str, Any]:
    """Missing seq ranges (samples never stored) and receiver silences over 1 s."""
    seq = np.asarray(seq, np.int64)
    jumps = np.flatnonzero(np.diff(seq) > 1)
    arrival = np.sort(np.asarray(arrival_ns, np.int64))
    silent = np.flatnonzero(np.diff(arrival) > RECEIVER_GAP_S * 1e9)
    return {"samples": int(seq.size), "seq_first": int(seq[0]), "seq_last": int(seq[-1]),
            "missing": int(seq[-1] - seq[0] + 1 - seq.size), "seq_gaps": int(jumps.size),
            "seq_gap_list": [[int(seq[i] + 1), int(seq[i + 1] - 1)] for i in jumps[:MAX_LISTED]],
            "receiver_gaps": int(silent.size),
            "receiver_gap_list": [float((arrival[i + 1] - arrival[i]) / 1e6)
                                  for i in silent[:MAX_LISTED]],
            "clock_segments": segments}


def capture_geometry(frame_size: tuple[int, int], viewport: tuple[float, float],
                     strip: StripGeometry | None, cell: float,
                     ) -> tuple[tuple[float, float], tuple[float, float], list[str]]:
    """Scale and offset with `captured px = scale * viewport px + offset`: measured from the
    timecode strip (bottom-left of the viewport) when located, else the size ratio."""
    warnings: list[str] = []
    fw, fh = frame_size
    vw, vh = viewport
    if strip is not None:
        sx, sy = strip.pitch_x / cell, strip.pitch_y / cell
        offset = (strip.x0, strip.y0 + 3 * strip.pitch_y - sy * vh)
        return (sx, sy), (round(offset[0], 2), round(offset[1], 2)), warnings
    if vw <= 0 or vh <= 0:
        return (1.0, 1.0), (0.0, 0.0), ["viewport size unknown: capture scale assumed 1"]
    if abs((fw / fh) / (vw / vh) - 1) > ASPECT_TOLERANCE:
        message = (f"captured frames are {fw}x{fh} but the viewport is {vw:g}x{vh:g}: the "
                   "aspect ratios disagree, so the capture scale is a guess; record the "
                   "viewport only, or use the timecode strip to measure it")
        logger.warning("%s", message)
        warnings.append(message)
    return (fw / vw, fh / vh), (0.0, 0.0), warnings
