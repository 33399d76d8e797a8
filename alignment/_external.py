"""Any video plus a state log -> an aligned session (an OBS or phone recording of a play).

The video is remuxed (not re-encoded) into the session; its frame times are the decoder's
timestamps, never `i / fps`. Without our receiver there are no host clocks, so the session's
clock domain is the Unix wall clock when the samples carry `wall_ms` (each sample's own
wall time stands in for its arrival) and the client clock otherwise. The video's start in
that domain comes from `video_start_wall` or `offset_ms`; with the timecode strip in the
video the aligner measures it instead (any error is absorbed into the measured latency).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from alignment._align import align_session
from alignment._errors import AlignmentError, ImportFormatError
from alignment._report import AlignmentReport
from capture import CaptureSettings, PluginInfo, Region, Sample, SessionWriter
from capture._layout import VIDEO

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20


def read_state_log(path: Path) -> list[dict[str, Any]]:
    """Validated samples of a JSON-lines log: bare wire samples, or our state.jsonl records
    (`{seq, arrival_mono_ns, arrival_wall_ns, sample}`); sorted by seq."""
    if not path.is_file():
        raise ImportFormatError(f"state log {path} does not exist; pass a JSON-lines file of "
                                "samples (a session's state.jsonl works)")
    samples: dict[int, dict[str, Any]] = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if len(line) > MAX_LINE_BYTES:
                raise ImportFormatError(f"{path}:{number}: line of {len(line)} bytes exceeds "
                                        f"{MAX_LINE_BYTES}; expected one sample per line")
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                raw = record.get("sample", record) if isinstance(record, dict) else record
                sample = Sample.model_validate(raw)
            except (orjson.JSONDecodeError, ValidationError, AttributeError) as exc:
                raise ImportFormatError(f"{path}:{number}: not a valid sample ({exc}); "
                                        "expected a wire sample (docs/protocol.md)") from None
            samples[sample.seq] = sample.model_dump(mode="json")
    if not samples:
        raise ImportFormatError(f"state log {path} holds no samples")
    return [samples[k] for k in sorted(samples)]


def _parse_wall(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AlignmentError(f"--video-start-wall {text!r} is not an ISO 8601 time; expected "
                             "e.g. 2026-11-24T10:15:30.250+00:00") from None
    if moment.tzinfo is None:
        raise AlignmentError(f"--video-start-wall {text!r} has no time zone; add one "
                             "(e.g. +00:00) so it is unambiguous")
    return round(moment.timestamp() * 1e6) * 1000


def remux(source: Path, target: Path) -> tuple[list[int], int, int, float]:
    """Copy the first video stream into Matroska; returns its pts (us, sorted), size, fps."""
    import av

    try:
        src = av.open(str(source))
    except (av.FFmpegError, OSError) as exc:
        raise ImportFormatError(f"cannot read video {source}: {exc}; expected a video file "
                                "FFmpeg can read") from None
    with src, av.open(str(target), "w", format="matroska") as out:
        if not src.streams.video:
            raise ImportFormatError(f"{source} has no video stream")
        stream = src.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        copy = out.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is None and packet.pts is None:
                continue
            packet.stream = copy
            out.mux(packet)
    with av.open(str(target)) as check:
        stream = check.streams.video[0]
        tb = stream.time_base
        pts = sorted({round(p.pts * tb * 1_000_000) for p in check.demux(stream)
                      if p.pts is not None})
    if len(pts) < 1:
        raise ImportFormatError(f"{source} holds no video frames")
    span = (pts[-1] - pts[0]) / 1e6
    fps = (len(pts) - 1) / span if span > 0 else 30.0
    return pts, width, height, fps


def align_external(state_log: Path, video: Path, out: Path, *,
                   video_start_wall: str | None = None, offset_ms: float | None = None,
                   tolerance_ms: float = 50.0, latency_ms: float | None = None,
                   use_timecode: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> AlignmentReport:
    """Build a session at `out` from a state log and any video, and align it (`progress` as
    for `align_session`). Nothing is left at `out` when anything fails."""
    if video_start_wall is not None and offset_ms is not None:
        raise AlignmentError("give --video-start-wall or --offset-ms, not both")
    out = Path(out)
    if out.exists():
        raise AlignmentError(f"{out} already exists; choose a new --out folder")
    samples = read_state_log(Path(state_log))
    wall = all(s.get("wall_ms") is not None for s in samples)
    if video_start_wall is not None and not wall:
        raise AlignmentError("--video-start-wall needs wall_ms in every sample of the state "
                             "log; use --offset-ms instead")

    def host_ns(s: dict[str, Any]) -> int:
        # wall_ms is whole milliseconds, cut down: the sample's wall time lies in
        # [wall_ms, wall_ms + 1). Stamping the upper end keeps every stamp at or after the
        # truth, so the clock's lower envelope through many samples lands on it (the lower
        # end would put it ~1 ms early)
        return (int(s["wall_ms"]) + 1) * 1_000_000 if wall else round(float(s["t"]) * 1e9)

    if video_start_wall is not None:
        start_ns = _parse_wall(video_start_wall)
    else:
        start_ns = host_ns(samples[0]) + round((offset_ms or 0.0) * 1e6)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        writer = SessionWriter.create(staging, out.name)
        pts, width, height, fps = remux(Path(video), writer.path / VIDEO)
        viewport = tuple(samples[0]["camera"]["viewport"])
        writer.update_manifest(
            capture=CaptureSettings(fps=fps, region=Region(left=0, top=0, width=width,
                                                           height=height)),
            plugin=PluginInfo(plugin_version="imported", datamodel="imported",
                              viewport=viewport),
            notes={"imported": {"video": str(video), "state": str(state_log),
                                "clock_domain": "unix_wall" if wall else "client",
                                "video_start_ns": start_ns,
                                "start_from": "wall" if video_start_wall else "offset"}})
        writer.append_state(orjson.dumps({"seq": s["seq"], "arrival_mono_ns": host_ns(s),
                                          "arrival_wall_ns": host_ns(s) if wall else 0,
                                          "sample": s}) for s in samples)
        writer.append_frames({"index": i, "pts_us": p, "grab_start_ns": start_ns + p * 1000,
                              "grab_end_ns": start_ns + p * 1000,
                              "wall_ns": start_ns + p * 1000 if wall else 0}
                             for i, p in enumerate(pts))
        writer.finalize()
        report = align_session(writer.path, tolerance_ms=tolerance_ms, latency_ms=latency_ms,
                               use_timecode=use_timecode, progress=progress)
        if (report.latency_source != "timecode" and video_start_wall is None
                and offset_ms is None):
            raise AlignmentError("cannot place the video in time: it shows no timecode; pass "
                                 "--video-start-wall (its first frame's wall time) or "
                                 "--offset-ms")
        writer.path.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return replace(report, session=str(out))
