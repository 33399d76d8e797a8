"""Build test sessions with an aligned.parquet that follows the aligned-table contract
(docs/labels.md, "Input"), optionally with a real encoded video and frame table.

`make_session` writes aligned.parquet by hand (every frame timecode-matched to one sample,
residual 0): exact, for golden values. `make_simulated_session` writes a simulated capture
(`alignment.simulate_capture`: wandering render rate, drifting client clock, late batches,
jittered grabs) and runs the real aligner on it, so the rows are clock-matched and the state
interpolated between samples, as in most real sessions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alignment import SimulatedCapture, align_session, simulate_capture
from capture import CaptureSettings, Region, Session, SessionWriter
from capture._layout import ClockAnchor
from capture._store import now_anchor
from capture._video import VideoWriter


def _fixed2(values: Sequence[float], n: int) -> pa.Array:
    flat = pa.array(np.tile(np.asarray(values, float), n))
    return pa.FixedSizeListArray.from_arrays(flat, 2)


def frame_image(i: int, width: int, height: int) -> np.ndarray:
    """A deterministic, textured RGB frame that changes with `i`."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 3 + i * 7) % 256, (y * 2 + i * 5) % 256,
                      ((x + y) // 4 + i * 11) % 256], axis=-1).astype(np.uint8)
    image[-24:, :320] = 255  # where a timecode strip would be
    return image


def make_session(parent: Path, samples: list[dict], frame_samples: Sequence[int | None],
                 frame_t: Sequence[float], *, size: tuple[int, int] = (1280, 720),
                 scale: tuple[float, float] = (1.0, 1.0),
                 offset: tuple[float, float] = (0.0, 0.0), video: bool = False,
                 image: Callable[[int, int, int], np.ndarray] = frame_image,
                 name: str = "s1") -> Path:
    """A session whose frame i shows sample `frame_samples[i]` (None: unmatched) at time
    `frame_t[i]` seconds; aligned.parquet is written as `stpe align` would for timecode
    matches (the state is the decoded sample itself, residual 0)."""
    writer = SessionWriter.create(parent, name)
    writer.append_state(
        orjson.dumps({"seq": s["seq"], "arrival_mono_ns": 1000 + s["seq"],
                                    "arrival_wall_ns": 2000 + s["seq"], "sample": s})
        for s in samples)
    width, height = size
    n = len(frame_t)
    start = now_anchor()
    pts = [round(t * 1000) * 1000 for t in frame_t]
    writer.append_frames({"index": i, "pts_us": pts[i], "grab_start_ns": int(t * 1e9),
                          "grab_end_ns": int(t * 1e9) + 1000, "wall_ns": int(t * 1e9)}
                         for i, t in enumerate(frame_t))
    writer.update_manifest(capture=CaptureSettings(
        fps=30.0, region=Region(left=0, top=0, width=width, height=height)), video_start=start)
    if video:
        with VideoWriter(writer.path / "video.mkv", width, height, fps_hint=30.0,
                         preset="ultrafast") as out:
            for i in range(n):
                out.write(image(i, width, height), pts[i])
    writer.finalize()
    session = Session.open(writer.path)
    state = session.read_state() if samples else None
    by_seq = {} if state is None else {s: i for i, s in enumerate(state["seq"].to_pylist())}
    rows = pa.array([None if s is None else by_seq[s] for s in frame_samples], pa.int64())
    matched = pc.is_valid(rows)
    columns = {
        "frame_index": pa.array(range(n), pa.int64()),
        "t": pa.array(frame_t, pa.float64()),
        "pts_us": pa.array(pts, pa.int64()),
        "grab_start_ns": pa.array([int(t * 1e9) for t in frame_t], pa.int64()),
        "content_mono_ns": pa.array([int(t * 1e9) for t in frame_t], pa.int64()),
        "seq": pa.array(frame_samples, pa.int64()),
        "residual_ms": pc.if_else(matched, 0.0, pa.scalar(None, pa.float64())),
        "method": pc.if_else(matched, "timecode", "none"),
        "matched": matched,
        "frame_width": pa.array([width] * n, pa.int32()),
        "frame_height": pa.array([height] * n, pa.int32()),
        "capture_scale": _fixed2(scale, n),
        "capture_offset": _fixed2(offset, n),
    }
    table = pa.table(columns)
    if state is not None:
        picked = state.take(rows).drop_columns(["seq", "arrival_mono_ns", "arrival_wall_ns"])
        picked = picked.rename_columns(["client_t" if c == "t" else c
                                        for c in picked.column_names])
        for name_, column in zip(picked.column_names, picked.columns, strict=True):
            table = table.append_column(name_, column)
    pq.write_table(table, writer.path / "aligned.parquet")
    return writer.path


def make_simulated_session(parent: Path, sample_at: Callable[[int, float], dict], *,
                           duration_s: float = 2.0, latency_ms: float = 25.0, seed: int = 0,
                           size: tuple[int, int] = (1280, 720), video: bool = False,
                           image: Callable[[int, int, int], np.ndarray] = frame_image,
                           name: str = "s1") -> tuple[Path, SimulatedCapture]:
    """A simulated capture whose sample `seq` is `sample_at(seq, client_t)`, aligned by
    `alignment.align_session` from its clock streams alone (no timecode). With `video`,
    frame i shows `image(true_seq[i], width, height)`: the sample really on screen."""
    sim = simulate_capture(duration_s, latency_ms=latency_ms, seed=seed)
    writer = SessionWriter.create(parent, name)
    start = int(sim.grab_start_ns[0])
    writer.update_manifest(
        capture=CaptureSettings(fps=60.0, region=Region(left=0, top=0, width=size[0],
                                                        height=size[1])),
        video_start=ClockAnchor(host_mono_ns=start, host_wall_ns=start))
    records = []
    for k in range(sim.seq.size):
        sample = sample_at(int(sim.seq[k]), float(sim.client_t[k]))
        sample["wall_ms"] = int(sim.wall_ms[k])
        arrival = int(sim.arrival_ns[k])
        records.append(orjson.dumps({"seq": int(sim.seq[k]), "arrival_mono_ns": arrival,
                                     "arrival_wall_ns": arrival, "sample": sample}))
    writer.append_state(records)
    writer.append_sync(
        [{"kind": "anchor", "client": float(c), "wall_ms": 0, "arrival_mono_ns": int(a),
          "arrival_wall_ns": int(a)}
         for c, a in zip(sim.anchor_client, sim.anchor_arrival_ns, strict=True)]
        + [{"kind": "probe", "t0": float(a), "t1_ns": int(b), "t2_ns": int(c), "t3": float(d)}
           for a, b, c, d in zip(sim.probe_t0, sim.probe_t1_ns, sim.probe_t2_ns, sim.probe_t3,
                                 strict=True)])
    pts = (sim.grab_start_ns - start) // 1000
    if video:
        with VideoWriter(writer.path / "video.mkv", size[0], size[1], fps_hint=60.0,
                         preset="ultrafast") as out:
            pts = np.array([out.write(image(int(seq), size[0], size[1]), int(p))
                            for seq, p in zip(sim.true_seq, pts, strict=True)])
    writer.append_frames(
        {"index": i, "pts_us": int(pts[i]), "grab_start_ns": int(sim.grab_start_ns[i]),
         "grab_end_ns": int(sim.grab_end_ns[i]), "wall_ns": int(sim.frame_wall_ns[i]),
         "dropped_before": int(sim.dropped_before[i])} for i in range(pts.size))
    writer.finalize()
    align_session(writer.path, latency_ms=latency_ms, use_timecode=False)
    return writer.path, sim
