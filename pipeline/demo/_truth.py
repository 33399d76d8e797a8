"""Check an aligned, labelled demo session against what the game really showed."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from capture import Session
from pipeline.demo._player import ShownFrame
from pipeline.demo._raster import marker_centroid

TRUTH = "truth.jsonl"
CHECK = "check.json"


@dataclass(frozen=True)
class TruthCheck:
    """How the alignment and the labels compare with the game's own log."""

    frames: int
    timecode_frames: int
    seq_checked: int  # frames with an aligned seq
    seq_correct: int  # ... that was on screen while the frame was grabbed
    timecode_correct: int  # timecode frames whose decoded seq was on screen
    root_px_checked: int
    root_px_error_max: float | None  # labels' root_px vs the marker in the video, px
    latency_true_ms: float  # median of shown_begin - step time


def write_truth(path: Path, shown: list[ShownFrame]) -> Path:
    """The game's log, one JSON line per shown frame (host_mono ns, viewport px)."""
    path.write_bytes(b"".join(orjson.dumps(f.__dict__) + b"\n" for f in shown))
    return path


def read_truth(path: Path) -> list[ShownFrame]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [ShownFrame(**{**r, "root_px": None if r["root_px"] is None
                          else tuple(r["root_px"])}) for r in rows]


def _visible(shown: list[ShownFrame], begins: list[int], start: int, end: int) -> set[int]:
    """Seqs on screen at some time during [start, end] (see `visible_seqs`), by bisection."""
    first = max(0, bisect.bisect_right(begins, start) - 2)
    out = set()
    for i in range(first, len(shown)):
        if shown[i].shown_begin_ns > end:
            break
        until = shown[i + 1].shown_end_ns if i + 1 < len(shown) else None
        if until is None or until >= start:
            out.add(shown[i].seq)
    return out


def drawn_root_errors(session: Session, labels: pa.Table) -> list[float]:
    """Per timecode frame: distance (px) between the labels' root pixel and the root marker
    the game drew, found in the recorded video itself."""
    wanted = {r["frame_index"]: r["root_px"] for r in labels.select(
        ["frame_index", "method", "root_px"]).to_pylist()
        if r["method"] == "timecode" and r["root_px"] is not None}
    errors = []
    for frame in session.iter_frames():
        label_px = wanted.get(frame.index)
        found = None if label_px is None else marker_centroid(frame.image[..., ::-1])
        if found is not None:
            errors.append(float(np.hypot(found[0] - label_px[0], found[1] - label_px[1])))
    return errors


def check_truth(session: Session, aligned: pa.Table, labels: pa.Table,
                shown: list[ShownFrame]) -> TruthCheck:
    """Compare aligned seqs with the seqs on screen during each grab, and labelled root
    pixels with the marker the game drew, as found in the recorded video."""
    frames = session.read_frames()
    begins = [f.shown_begin_ns for f in shown]
    a = aligned.select(["frame_index", "seq", "method", "grab_start_ns"]).to_pylist()
    grab_end = dict(zip(frames["index"].to_pylist(), frames["grab_end_ns"].to_pylist(),
                        strict=True))
    checked = correct = timecode_correct = 0
    for row in a:
        if row["seq"] is None:
            continue
        checked += 1
        end = grab_end.get(row["frame_index"], row["grab_start_ns"])
        if row["seq"] in _visible(shown, begins, row["grab_start_ns"], end):
            correct += 1
            timecode_correct += row["method"] == "timecode"
    errors = drawn_root_errors(session, labels)
    methods = aligned["method"].to_pylist()
    latency = np.median([f.shown_begin_ns - f.step_ns for f in shown]) / 1e6 if shown else 0.0
    return TruthCheck(frames=aligned.num_rows, timecode_frames=methods.count("timecode"),
                      seq_checked=checked, seq_correct=correct,
                      timecode_correct=timecode_correct, root_px_checked=len(errors),
                      root_px_error_max=max(errors) if errors else None,
                      latency_true_ms=float(latency))
