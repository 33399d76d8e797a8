"""`align_session`: fit the clock, decode the timecode, match every frame to the state and
write aligned.parquet (docs/alignment.md) and alignment.json."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from alignment._clock import ClockModel, fit_clock
from alignment._errors import AlignmentError
from alignment._interp import state_at_frames
from alignment._match import (
    METHODS,
    TIMECODE,
    Matching,
    content_times,
    match_frames,
    render_intervals,
    restrict_to_span,
)
from alignment._reads import candidate_rows, check_reads
from alignment._report import (
    MAX_LISTED,
    AlignmentReport,
    capture_geometry,
    frame_gaps,
    residual_stats,
    state_gaps,
)
from alignment._timecode import decode_video
from alignment._timecode_code import DEFAULT_CELL
from capture import Session, SessionWriter
from capture._layout import ALIGNED, ALIGNMENT_REPORT, VIDEO

logger = logging.getLogger(__name__)
# rows per row group of aligned.parquet: a reader streaming the file holds one group
ROW_GROUP = 1024

LATENCY_PRIOR_MS = 25.0  # grab minus render on a 60 Hz desktop compositor: 1-2 refreshes
LATENCY_PRIOR_STD_MS = 10.0


def _play_order(state: pa.Table, events: list[dict[str, Any]]) -> tuple[pa.Table, np.ndarray]:
    """The samples in Play order and the mask of each Play's first stored sample.

    Seqs continue across Plays, so seq order is Play order, and each `play` event's
    `first_seq` starts a Play. Older sessions restarted seq at 0 in each Play: there the
    samples are put back in arrival order and a Play starts wherever the seq goes back."""
    seqs = state.column("seq").to_numpy()
    starts = np.zeros(seqs.size, bool)
    if np.unique(seqs).size < seqs.size:
        order = np.lexsort((seqs, state.column("arrival_mono_ns").to_numpy()))
        state = state.take(pa.array(order))
        seqs = seqs[order]
        starts[1:] = np.diff(seqs) < 0
    named = [e.get("first_seq") for e in events if e.get("kind") == "play"]
    firsts = np.array([f for f in named if type(f) is int and f >= 0], np.int64)
    if firsts.size and bool(np.all(np.diff(seqs) > 0)):
        rows = np.searchsorted(seqs, firsts)
        starts[rows[rows < seqs.size]] = True
    starts[:1] = False
    return state, starts


def _video_size(video: Path) -> tuple[int, int]:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def _viewport(session: Session, state: pa.Table) -> tuple[float, float]:
    """The viewport the camera was sampled with (the most common one), else the one the
    plugin announced at hello; the samples are the truth when the two differ."""
    values = [tuple(v) for v in state.column("camera.viewport").to_pylist() if v is not None]
    if values:
        width, height = Counter(values).most_common(1)[0][0]
        return float(width), float(height)
    if session.manifest.plugin is not None:
        return tuple(session.manifest.plugin.viewport)  # type: ignore[return-value]
    return (0.0, 0.0)


def _frame_columns(frames: pa.Table, content_ns: np.ndarray, origin: int, m: Matching,
                   seqs: np.ndarray, size: tuple[int, int], scale: tuple[float, float],
                   offset: tuple[float, float]) -> dict[str, pa.Array]:
    n = frames.num_rows
    matched = m.matched
    pair = pa.list_(pa.float64(), 2)
    return {
        "frame_index": frames.column("index").combine_chunks(),
        "t": pa.array((content_ns - content_ns[0]) / 1e9, pa.float64()),
        "pts_us": frames.column("pts_us").combine_chunks(),
        "grab_start_ns": frames.column("grab_start_ns").combine_chunks(),
        "content_mono_ns": pa.array(np.round(content_ns).astype(np.int64) + origin),
        "seq": pa.array(seqs[np.where(matched, m.nearest, 0)], pa.int64(), mask=~matched),
        "residual_ms": pa.array(m.residual_ms, pa.float64(), mask=~matched),
        "method": pa.array(np.asarray(METHODS, dtype=object)[m.method], pa.string()),
        "matched": pa.array(matched, pa.bool_()),
        "frame_width": pa.array(np.full(n, size[0], np.int32)),
        "frame_height": pa.array(np.full(n, size[1], np.int32)),
        "capture_scale": pa.array([list(scale)] * n, pair),
        "capture_offset": pa.array([list(offset)] * n, pair),
    }


def _clock_summary(model: ClockModel) -> dict[str, object]:
    main = model.main
    return {"method": main.method, "offset_ms": main.offset_ms, "drift_ppm": main.drift_ppm,
            "offset_std_ms": main.offset_std_ms, "drift_std_ppm": main.drift_std_ppm,
            "asymmetry_bound_ms": main.asymmetry_bound_ms,
            "reference_client": main.reference_client,
            "segments": [s.summary() for s in model.segments]}


def align_session(path: Path | str, *, tolerance_ms: float = 50.0,
                  latency_ms: float | None = None, use_timecode: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> AlignmentReport:
    """Align every captured frame of the session at `path` with its state; write
    aligned.parquet and alignment.json into the session and return the report.
    `progress(done, total)` follows the timecode decoding (frames), the long part."""
    session = Session.open(path)
    state = session.read_state()
    frames = session.read_frames()
    if state.num_rows == 0:
        raise AlignmentError(f"{session.path} has no stored samples; nothing to align. "
                             "Check that the plugin was running while recording")
    if frames.num_rows == 0:
        raise AlignmentError(f"{session.path} has no captured frames (frames.jsonl is empty); "
                             "record with the screen recorder running, or import a video")
    if tolerance_ms <= 0:
        raise AlignmentError(f"tolerance must be positive, got {tolerance_ms} ms")
    state, play_starts = _play_order(state, session.events())
    seqs = state.column("seq").to_numpy()
    client = state.column("t").to_numpy()
    model, segment = fit_clock(client, state.column("arrival_mono_ns").to_numpy(),
                               session.sync_records(), play_starts)
    grab_ns = frames.column("grab_start_ns").to_numpy()
    origin = int(grab_ns[0])  # times relative to the first grab keep float64 precise
    sample_host = model.to_host_ns(client, segment, origin)
    intervals = render_intervals(sample_host, segment)
    grab = (grab_ns - origin).astype(np.float64)
    video = session.path / VIDEO
    tc = None
    decoded = np.full(frames.num_rows, -1, np.int64)
    candidates = decoded
    reads = None
    if use_timecode and video.is_file():
        tc = decode_video(video, frames.column("pts_us").to_numpy(), progress=progress)
        if tc.decoded:
            candidates = candidate_rows(tc.payload, grab, sample_host, seqs, segment)
            clock_std = np.array([min(s.offset_std_ms, 1e3) * 1e6 for s in model.segments])
            reads = check_reads(candidates, grab, sample_host, segment, clock_std)
            decoded = reads.rows
    warnings: list[str] = []
    latency_bound_ns: float | None = None
    if latency_ms is not None:
        latency_ns, source = latency_ms * 1e6, "given"
    elif reads is not None and reads.latency_ns is not None and (decoded >= 0).any():
        latency_ns, latency_bound_ns, source = reads.latency_ns, reads.latency_bound_ns, \
            "timecode"
    else:
        latency_ns, source = LATENCY_PRIOR_MS * 1e6, "prior"
        latency_bound_ns = 2 * LATENCY_PRIOR_STD_MS * 1e6
        interval_ms = float(np.median(intervals)) / 1e6 if intervals.size else 0.0
        frames_off = LATENCY_PRIOR_STD_MS / interval_ms if interval_ms > 0 else float("nan")
        warnings.append(
            f"display latency not measured (no timecode read anywhere in the video): the "
            f"prior {LATENCY_PRIOR_MS:g} +- {LATENCY_PRIOR_STD_MS:g} ms (1 sigma) is used, so "
            f"frames may map up to about {frames_off:.1f} frames (1 sigma) off; pass "
            "--latency-ms or record with the timecode (clap mode is enough)")
    content = grab - latency_ns
    m = match_frames(content_times(grab, latency_ns, sample_host, intervals), sample_host,
                     tolerance_ms=tolerance_ms, decoded=decoded, content_ns=content)
    m = restrict_to_span(m, content, sample_host, segment, intervals)
    capture = session.manifest.capture
    size = ((capture.region.width, capture.region.height) if capture is not None
            else _video_size(video))
    viewport = _viewport(session, state)
    cell = float(session.manifest.notes.get("timecode_cell", DEFAULT_CELL))
    scale, offset, geometry_warnings = capture_geometry(
        size, viewport, tc.geometry if tc else None, cell)
    columns = _frame_columns(frames, content, origin, m, seqs, size, scale, offset)
    read = candidates >= 0  # what the strip said, before the checks: for diagnostics
    columns["timecode_seq"] = pa.array(seqs[np.where(read, candidates, 0)], pa.int64(),
                                       mask=~read)
    columns.update(state_at_frames(state, m))
    table = pa.table(columns)
    matched = int(m.matched.sum())
    report = AlignmentReport(
        session=str(session.path), frames=frames.num_rows, matched=matched,
        coverage=matched / frames.num_rows,
        methods={name: int((m.method == code).sum()) for code, name in enumerate(METHODS)},
        residual_ms=residual_stats(m.residual_ms), tolerance_ms=tolerance_ms,
        clock=_clock_summary(model), latency_ms=latency_ns / 1e6, latency_source=source,
        latency_bound_ms=None if latency_bound_ns is None else latency_bound_ns / 1e6,
        timecode={"located": bool(tc and tc.geometry), "decoded": tc.decoded if tc else 0,
                  "seen_frames": [list(run) for run in tc.seen[:MAX_LISTED]] if tc else [],
                  "seen_runs": len(tc.seen) if tc else 0,
                  "undecodable": tc.undecodable if tc else 0,
                  "seq_not_stored": int(((tc.payload >= 0) & (candidates < 0)).sum())
                  if tc else 0,
                  "rejected": reads.rejected if reads else 0,
                  "exact_frames": int((m.method == TIMECODE).sum()),
                  "held_frames": int(((m.method == TIMECODE)
                                      & (np.abs(m.residual_ms) > tolerance_ms)).sum())},
        capture_scale=scale, capture_offset=offset, frame_size=size, viewport=viewport,
        video=frame_gaps(grab, frames.column("dropped_before").to_numpy()),
        state=state_gaps(seqs, state.column("arrival_mono_ns").to_numpy(), len(model.segments)),
        warnings=(*warnings, *geometry_warnings))
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=ROW_GROUP)
    writer = SessionWriter.reopen(session.path)
    writer.write_output(ALIGNED, sink.getvalue())
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    writer.write_output(ALIGNMENT_REPORT, orjson.dumps(report.to_dict(), option=options) + b"\n")
    logger.info("aligned %d/%d frames of %s", matched, frames.num_rows, session.path)
    return report


def read_aligned(session: Session | Path | str) -> pa.Table:
    """The session's aligned.parquet as a table; a clear error when missing or unreadable."""
    root = session.path if isinstance(session, Session) else Path(session)
    path = root / ALIGNED
    if not path.is_file():
        raise AlignmentError(f"{root} has no {ALIGNED}; run `stpe align {root}` first")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise AlignmentError(f"{path} is not a readable parquet file ({exc}); re-create it "
                             f"with `stpe align {root}`") from None
