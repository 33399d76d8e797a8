"""Repair a session in place, whatever its status: one whose recorder was killed
("recording") or stopped by a failed write ("failed") is made whole again without deleting
a byte; a "complete" one has its logs checked and only torn lines moved aside.

- A log whose last line was cut mid-write keeps its whole lines; the cut bytes move to
  `<log>.torn`. A last record that lacks only its newline gets the newline.
- The readable part of the video is remuxed (no re-encoding) into a clean `video.mkv`; the
  original is kept as `video.damaged.mkv`.
- Frame-table rows whose video was lost move to `frames.lost.jsonl`, so every row of
  `frames.jsonl` has its frame in the video.
- The manifest gets status "recovered" and a `stopped` anchor at the last thing recorded.

Each step can run again after an interrupted repair; a recovered session is left as is.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from capture import _layout as layout
from capture._errors import SessionError, StorageError
from capture._layout import (
    ClockAnchor,
    EventRecord,
    FileModel,
    FrameRecord,
    StateRecord,
    SyncRecord,
)
from capture._store import Session, SessionWriter, read_jsonl

logger = logging.getLogger(__name__)

DAMAGED_VIDEO = "video.damaged.mkv"
LOST_FRAMES = "frames.lost.jsonl"
TORN_SUFFIX = ".torn"
_LOGS: dict[str, type[FileModel]] = {layout.STATE: StateRecord, layout.SYNC: SyncRecord,
                                     layout.EVENTS: EventRecord, layout.FRAMES: FrameRecord}


@dataclass(frozen=True)
class RepairReport:
    """What `repair_session` found and did."""

    path: Path
    already_recovered: bool
    torn_bytes: dict[str, int] = field(default_factory=dict)  # log -> bytes moved to .torn
    completed_lines: tuple[str, ...] = ()  # logs whose last record lacked only its newline
    samples: int = 0
    video: str = "missing"  # "remuxed" | "unreadable" | "missing" | "unchanged"
    frames_decodable: int = 0
    lost_frames: tuple[int, ...] = ()  # frame-table indices whose video was lost
    untabled_frames: int = 0  # decodable frames with no frame-table row (a torn row)
    stopped: ClockAnchor | None = None
    intact: bool = False  # a complete session with nothing to repair, left untouched


def _recorder_alive(pid: int) -> bool:
    """Whether `pid` still runs and looks like an STPE process (pids get reused)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        command = cmdline.read_bytes()
    except OSError:
        return True  # no /proc (not Linux): assume it is the recorder
    return b"stpe" in command or b"pipeline" in command


def _split(path: Path, model: type[FileModel]) -> tuple[list[bytes], list[bytes], bool]:
    """The lines of a log that are whole `model` records, those that are not, and whether
    the last record lacks only its newline."""
    if not path.is_file():
        return [], [], False
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()  # b"" when the log ends with a newline
    completed = bool(tail.strip()) and _is_record(tail, model)  # only its newline is missing
    lines.append(tail)
    whole = [not line.strip() or _is_record(line, model) for line in lines]
    good = [line for line, ok in zip(lines, whole, strict=True) if ok]
    bad = [line for line, ok in zip(lines, whole, strict=True) if not ok]
    return good, bad, completed


def _trim(writer: SessionWriter, name: str, model: type[FileModel]) -> tuple[int, bool]:
    """Move the lines of log `name` that are not whole `model` records (a line cut by the
    crash, or a corrupt one) to `<name>.torn`, in order; (bytes moved, last completed)."""
    good, bad, completed = _split(writer.path / name, model)
    if not bad and not completed:
        return 0, False
    if bad:
        torn = writer.path / (name + TORN_SUFFIX)
        previous = torn.read_bytes() if torn.exists() else b""
        # saved before the log is rewritten, so a crash here loses nothing
        writer.write_output(torn.name, previous + b"".join(line + b"\n" for line in bad))
    writer.write_output(name, b"".join(line + b"\n" for line in good if line.strip()))
    return sum(len(line) for line in bad), completed


def _is_record(line: bytes, model: type[FileModel]) -> bool:
    try:
        model.model_validate_json(line, strict=True)
    except ValidationError:
        return False
    return True


def _remux(source: Path, target: Path) -> set[int] | None:
    """Copy the decodable prefix of `source` into `target`; the pts (us) of every frame it
    holds, or None when `source` cannot be opened at all. A failure to write `target` (a
    full disk) is a StorageError, never taken for damage in `source`."""
    import av

    try:
        src = av.open(str(source))
    except av.FFmpegError as exc:
        logger.warning("%s cannot be opened (%s): no frame can be recovered", source, exc)
        return None
    pts: set[int] = set()
    write_error: Exception | None = None
    try:
        with src, av.open(str(target), "w", format="matroska") as out:
            stream = src.streams.video[0]
            copy = out.add_stream_from_template(stream)
            decoder = stream.codec_context
            tb = stream.time_base
            try:
                for packet in src.demux(stream):
                    if packet.size == 0:
                        continue
                    frames = decoder.decode(packet)
                    packet.stream = copy
                    try:
                        out.mux(packet)
                    except (av.FFmpegError, OSError) as exc:
                        write_error = exc
                        break
                    pts.update(round(f.pts * tb * 1_000_000) for f in frames)
                else:
                    pts.update(round(f.pts * tb * 1_000_000) for f in decoder.decode(None))
            except av.FFmpegError as exc:
                logger.info("%s: readable up to the damage (%s)", source, exc)
    except (av.FFmpegError, OSError) as exc:  # closing the output: its last cluster
        write_error = write_error or exc
    if write_error is not None:
        raise StorageError(f"cannot write the repaired video {target} ({write_error}); make "
                           f"room for a copy of {source} (about {source.stat().st_size} "
                           "bytes) and run `stpe repair` again: nothing was changed but the "
                           "original's name") from None
    return pts


def _repair_video(writer: SessionWriter) -> tuple[str, set[int]]:
    root = writer.path
    video, damaged = root / layout.VIDEO, root / DAMAGED_VIDEO
    if not damaged.exists():
        if not video.exists():
            return "missing", set()
        os.replace(video, damaged)  # the original is never rewritten
    staging = root / (layout.VIDEO + ".repair.tmp")
    try:
        pts = _remux(damaged, staging)
    except StorageError:
        staging.unlink(missing_ok=True)
        raise
    if pts is None:
        staging.unlink(missing_ok=True)
        return "unreadable", set()
    os.replace(staging, video)
    return "remuxed", pts


def _reconcile_frames(writer: SessionWriter, decodable: set[int]) -> tuple[list[int], int]:
    """Move frame rows without video to frames.lost.jsonl; (lost indices, untabled)."""
    rows = list(read_jsonl(writer.path / layout.FRAMES))
    kept = [r for r in rows if r.get("pts_us") in decodable]
    lost = [r for r in rows if r.get("pts_us") not in decodable]
    untabled = len(decodable - {r.get("pts_us") for r in rows})
    if lost:
        lost_path = writer.path / LOST_FRAMES
        earlier = {r["index"]: r for r in read_jsonl(lost_path)}
        merged = {**earlier, **{r["index"]: r for r in lost}}
        writer.write_output(LOST_FRAMES, b"".join(
            orjson.dumps(merged[i]) + b"\n" for i in sorted(merged)))
        writer.write_output(layout.FRAMES, b"".join(orjson.dumps(r) + b"\n" for r in kept))
    return [r["index"] for r in lost], untabled


def _last_activity(session: Session) -> ClockAnchor | None:
    """Host clocks of the last thing recorded: a frame grab, a sample arrival or an event."""
    candidates: list[tuple[int, int]] = []
    frames = list(read_jsonl(session.file("frames")))
    if frames:
        candidates.append((frames[-1]["grab_start_ns"], frames[-1]["wall_ns"]))
    last_state: dict[str, Any] | None = None
    for last_state in session.state_records():  # noqa: B007 - keep the last one
        pass
    if last_state is not None:
        candidates.append((last_state["arrival_mono_ns"], last_state["arrival_wall_ns"]))
    events = session.events()
    if events:
        candidates.append((events[-1]["host_mono_ns"], events[-1]["host_wall_ns"]))
    if not candidates:
        return None
    mono, wall = max(candidates)
    return ClockAnchor(host_mono_ns=mono, host_wall_ns=wall)


def repair_session(path: Path | str, *, force: bool = False) -> RepairReport:
    """Recover a session in place: one left "recording" by a crash or kill, or "failed"
    by a write error, is repaired in full (status "recovered"); a "complete" one only has
    torn log lines moved aside (left untouched, `intact`, when it has none).

    Refuses a folder that is not a session and (unless `force`) a session whose recorder
    process is still running. A recovered session is reported as such and left untouched.
    """
    session = Session.open(path)
    status = session.manifest.status
    if status == "complete":
        return _check_complete(session)
    if status == "recovered":
        frames = list(read_jsonl(session.file("frames")))
        return RepairReport(session.path, already_recovered=True, video="unchanged",
                            samples=sum(1 for _ in session.state_records()),
                            frames_decodable=len(frames), stopped=session.manifest.stopped)
    pid = session.manifest.notes.get("recorder_pid")
    if isinstance(pid, int) and not force and _recorder_alive(pid):
        raise SessionError(f"{session.path} is still being recorded by process {pid}; stop "
                           "that `stpe record` first (Ctrl-C), or pass --force if that "
                           "process is not recording")
    writer = SessionWriter.reopen(session.path)
    torn, completed = {}, []
    for name, model in _LOGS.items():
        moved, whole = _trim(writer, name, model)
        if moved:
            torn[name] = moved
        if whole:
            completed.append(name)
    stopped = _last_activity(session)
    video, decodable = _repair_video(writer)
    lost, untabled = _reconcile_frames(writer, decodable)
    samples = sum(1 for _ in session.state_records())
    writer.append_event("repair", torn_bytes=torn, video=video, lost_frames=len(lost),
                        untabled_frames=untabled)
    writer.finalize("recovered")
    if stopped is not None:
        writer.update_manifest(stopped=stopped)
    report = RepairReport(session.path, already_recovered=False, torn_bytes=torn,
                          completed_lines=tuple(completed), samples=samples, video=video,
                          frames_decodable=len(decodable), lost_frames=tuple(lost),
                          untabled_frames=untabled, stopped=stopped)
    logger.info("repaired %s: %s", session.path, report)
    return report


def _check_complete(session: Session) -> RepairReport:
    """A complete session's logs: untouched when whole, else torn lines moved aside."""
    damaged = [name for name, model in _LOGS.items()
               if any(_split(session.path / name, model)[1:])]
    samples = sum(1 for _ in session.state_records())
    if not damaged:
        return RepairReport(session.path, already_recovered=False, video="unchanged",
                            samples=samples, stopped=session.manifest.stopped, intact=True)
    writer = SessionWriter.reopen(session.path)
    torn, completed = {}, []
    for name in damaged:
        moved, whole = _trim(writer, name, _LOGS[name])
        if moved:
            torn[name] = moved
        if whole:
            completed.append(name)
    writer.append_event("repair", torn_bytes=torn, video="unchanged", lost_frames=0,
                        untabled_frames=0)
    writer.finalize("recovered")
    writer.update_manifest(stopped=session.manifest.stopped)
    return RepairReport(session.path, already_recovered=False, torn_bytes=torn,
                        completed_lines=tuple(completed), video="unchanged",
                        samples=sum(1 for _ in session.state_records()),
                        stopped=session.manifest.stopped)
