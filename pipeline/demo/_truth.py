"""Check an aligned, labelled demo session against what the game really showed."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipeline.demo._player import ShownFrame

TRUTH = "truth.jsonl"


@dataclass(frozen=True)
class TruthCheck:
    """How the alignment and the labels compare with the game's own log."""

    frames: int
    timecode_frames: int
    seq_checked: int  # frames with an aligned seq
    seq_correct: int  # ... that was on screen while the frame was grabbed
    timecode_correct: int  # timecode frames whose decoded seq was on screen
    root_px_checked: int
    root_px_error_max: float | None  # labels' root_px vs where the game drew it, px
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


def check_truth(aligned: pa.Table, labels: pa.Table, frames: pa.Table,
                shown: list[ShownFrame]) -> TruthCheck:
    """Compare aligned seqs with the seqs on screen during each grab (`frames` is the
    session's frame table), and labelled root pixels with where the game drew the root."""
    begins = [f.shown_begin_ns for f in shown]
    drawn = {f.seq: f.root_px for f in shown}
    a = aligned.select(["frame_index", "seq", "method", "grab_start_ns",
                        "capture_scale", "capture_offset"]).to_pylist()
    grab_end = dict(zip(frames["index"].to_pylist(), frames["grab_end_ns"].to_pylist(),
                        strict=True))
    root = dict(zip(labels["frame_index"].to_pylist(), labels["root_px"].to_pylist(),
                    strict=True))
    checked = correct = timecode_correct = px_checked = 0
    errors = []
    for row in a:
        if row["seq"] is None:
            continue
        checked += 1
        end = grab_end.get(row["frame_index"], row["grab_start_ns"])
        if row["seq"] in _visible(shown, begins, row["grab_start_ns"], end):
            correct += 1
            timecode_correct += row["method"] == "timecode"
        game_px, label_px = drawn.get(row["seq"]), root.get(row["frame_index"])
        if row["method"] == "timecode" and game_px is not None and label_px is not None:
            expected = np.multiply(row["capture_scale"], game_px) + row["capture_offset"]
            errors.append(float(np.hypot(*(np.array(label_px) - expected))))
            px_checked += 1
    methods = aligned["method"].to_pylist()
    latency = np.median([f.shown_begin_ns - f.step_ns for f in shown]) / 1e6 if shown else 0.0
    return TruthCheck(frames=aligned.num_rows, timecode_frames=methods.count("timecode"),
                      seq_checked=checked, seq_correct=correct,
                      timecode_correct=timecode_correct, root_px_checked=px_checked,
                      root_px_error_max=max(errors) if errors else None,
                      latency_true_ms=float(latency))
