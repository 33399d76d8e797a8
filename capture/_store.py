"""The session store: the only code that writes a session's files.

`SessionWriter` creates a session and appends to its logs; `Session` opens one for reading.
Both are safe to use from several threads.

Durability policy: an append returns once every byte of its lines is in the operating
system (unbuffered `write` calls), so what it returned for survives a crash or kill -9 of
STPE; the logs are fsynced when the session is closed (a power loss can lose what the OS
had not yet written back). A failed append (disk full, I/O error) keeps nothing: every log
it touched is truncated back to its size before the append, the writer refuses further
appends, and the space held in reserve (`layout.RESERVE`) is released so the session can
still be closed with status "failed" and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pydantic import ValidationError

from capture import _layout as layout
from capture._arrow import (
    frames_table,
    frames_table_from_records,
    state_table,
    state_table_from_records,
)
from capture._errors import SessionError, StorageError
from capture._layout import ClockAnchor, SessionManifest, Status

logger = logging.getLogger(__name__)


def tool_version() -> str:
    """The installed STPE version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stpe")
    except PackageNotFoundError:
        return "0+unknown"


def now_anchor() -> ClockAnchor:
    """host_mono and host_wall read back to back."""
    return ClockAnchor(host_mono_ns=time.perf_counter_ns(), host_wall_ns=time.time_ns())


def new_session_id() -> str:
    """A sortable, unique id: UTC start time plus 6 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(_storage_message(path, exc)) from None


def _storage_message(path: Path, exc: OSError) -> str:
    why = ("the disk is full" if exc.errno == errno.ENOSPC
           else f"{exc.strerror or exc}")
    return (f"cannot write {path} ({why}); nothing of that write was kept. Free space or "
            f"fix the disk, then start a new recording; what was written before is intact")


class SessionWriter:
    """Appends to one session's logs; `finalize()` marks it complete (idempotent)."""

    def __init__(self, path: Path, manifest: SessionManifest) -> None:
        self.path = path
        self._manifest = manifest
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._closed = False
        self._failure: StorageError | None = None

    @classmethod
    def create(cls, parent: Path, session_id: str | None = None) -> SessionWriter:
        """Create `parent/<session_id>/` with its manifest; refuses an existing folder."""
        session_id = session_id or new_session_id()
        path = Path(parent) / session_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise SessionError(f"session folder {path} already exists; choose another id") from None
        manifest = SessionManifest(session_id=session_id, tool_version=tool_version(),
                                   created=now_anchor())
        writer = cls(path, manifest)
        try:
            _write_atomic(path / layout.RESERVE, bytes(layout.RESERVE_BYTES))
            writer._save_manifest()
            writer.append_event("start")
        except StorageError:
            writer.close()
            raise
        return writer

    @classmethod
    def reopen(cls, path: Path) -> SessionWriter:
        """Open an existing session for appending (repair, re-finalize)."""
        return cls(Path(path), Session.open(path).manifest)

    @property
    def manifest(self) -> SessionManifest:
        return self._manifest

    @property
    def session_id(self) -> str:
        return self._manifest.session_id

    @property
    def closed(self) -> bool:
        """Whether `close()` or `finalize()` ran: appends are refused from then on."""
        return self._closed

    @property
    def failure(self) -> StorageError | None:
        """Why a write failed, once one did: appends are refused from then on."""
        return self._failure

    def update_manifest(self, **changes: Any) -> SessionManifest:
        """Replace manifest fields and write it atomically."""
        with self._lock:
            self._manifest = self._manifest.model_copy(update=changes)
            self._save_manifest()
            return self._manifest

    def _save_manifest(self) -> None:
        data = self._manifest.model_dump_json(by_alias=True, indent=2).encode()
        _write_atomic(self.path / layout.MANIFEST, data + b"\n")

    def write_output(self, relative: str, data: bytes) -> Path:
        """Atomically write a derived file (labels, annotations) at `relative` inside the
        session folder, creating its parent folders; paths leaving the folder are refused."""
        root = self.path.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or target == root:
            raise SessionError(f"output path {relative!r} is outside session {self.path}; "
                               "pass a path relative to the session folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, data)
        return target

    def _append(self, name: str, lines: Iterable[bytes]) -> None:
        self.append_together([(name, lines)])

    def append_together(self, parts: Iterable[tuple[str, Iterable[bytes]]]) -> None:
        """Append lines (no trailing newline) to several logs as one unit: when it returns,
        every line is in the OS; when it raises StorageError, no log kept any of them."""
        chunks = [(name, b"".join(line + b"\n" for line in lines)) for name, lines in parts]
        with self._lock:
            if self._closed:
                raise SessionError(f"session {self.path} is closed; reopen it to append")
            if self._failure is not None:
                raise StorageError(str(self._failure))
            self._write_chunks([(name, data) for name, data in chunks if data])

    def _write_chunks(self, chunks: list[tuple[str, bytes]]) -> None:
        written: list[tuple[int, int]] = []  # (fd, size before)
        name = ""
        try:
            for name, data in chunks:
                fd = self._fds.get(name)
                if fd is None:
                    fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                 0o644)
                    self._fds[name] = fd
                written.append((fd, os.fstat(fd).st_size))
                _write_all(fd, data)
        except OSError as exc:
            self._fail(self.path / name, exc, written)
            raise self._failure from None

    def _fail(self, path: Path, exc: OSError, written: list[tuple[int, int]]) -> None:
        """Undo a failed append and refuse the next ones; release the reserve."""
        for fd, size in written:
            try:
                os.ftruncate(fd, size)
            except OSError as undo:  # the torn line stays; `stpe repair` moves it aside
                logger.error("cannot cut the failed write off %s: %s", path, undo)
        self._failure = StorageError(_storage_message(path, exc))
        with contextlib.suppress(OSError):
            (self.path / layout.RESERVE).unlink()

    def append_state(self, lines: Iterable[bytes]) -> None:
        """Append serialized StateRecord lines (no trailing newline) in one write."""
        self._append(layout.STATE, lines)

    def append_sync(self, records: Iterable[dict[str, Any]]) -> None:
        self._append(layout.SYNC, (orjson.dumps(r) for r in records))

    def append_frames(self, records: Iterable[dict[str, Any]]) -> None:
        self._append(layout.FRAMES, (orjson.dumps(r) for r in records))

    def append_event(self, kind: str, **fields: Any) -> None:
        self._append(layout.EVENTS, [event_line(kind, **fields)])

    def sync_to_disk(self) -> None:
        """fsync every open log (the logs are already in the OS after each append)."""
        with self._lock:
            for fd in self._fds.values():
                os.fsync(fd)

    def finalize(self, status: Status = "complete") -> None:
        """Write the stop anchor and status, close the logs. Safe to call twice.

        After a failed write the session is closed as "failed" with the reason (in the
        space the reserve held), whatever `status` asked for."""
        if self._closed:
            return
        failure = self._failure
        if failure is None:
            self.append_event("stop", status=status)
            self.update_manifest(status=status, stopped=now_anchor())
        else:
            self._close_failed(failure)
        self.close()

    def _close_failed(self, failure: StorageError) -> None:
        try:
            with self._lock:
                self._write_chunks([(layout.EVENTS, event_line("error", source="store",
                                                               message=str(failure)) + b"\n"
                                     + event_line("stop", status="failed") + b"\n")])
            self.update_manifest(status="failed", stopped=now_anchor(),
                                 notes={**self._manifest.notes, "failure": str(failure)})
        except StorageError as exc:
            logger.error("session %s could not record why it stopped (%s); run `stpe "
                         "repair` on it once there is space", self.path, exc)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                with contextlib.suppress(OSError):  # a failed disk: the writes are in
                    os.fsync(fd)
                os.close(fd)
            self._fds.clear()
            self._closed = True
        with contextlib.suppress(OSError):
            (self.path / layout.RESERVE).unlink()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def event_line(kind: str, **fields: Any) -> bytes:
    """One EventRecord line (no newline), stamped with the host clocks now."""
    anchor = now_anchor()
    return orjson.dumps({"kind": kind, "host_mono_ns": anchor.host_mono_ns,
                         "host_wall_ns": anchor.host_wall_ns, **fields})


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame with its index in the frame table and its true timestamp."""

    index: int
    pts_us: int
    image: np.ndarray  # H x W x 3, uint8, RGB


def read_jsonl(path: Path, *, strict_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON-lines log. A truncated last line (a crash mid-write) is
    skipped with a warning unless `strict_tail`; a corrupt line elsewhere is an error."""
    if path.exists():
        yield from _parse_lines(_complete_lines(path, strict_tail), path)


def _complete_lines(path: Path, strict_tail: bool = False) -> bytes:
    """The log's bytes up to its last newline; a truncated last line after it is warned
    about (or, with `strict_tail`, an error)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if tail.strip():
        if strict_tail:
            raise SessionError(f"{path}: last line is truncated; run `stpe repair`")
        logger.warning("%s: ignoring a truncated last line (%d bytes)", path, len(tail))
    return data[:end]


def _parse_lines(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SessionError(f"{path}:{number}: corrupt record ({exc}); "
                               "run `stpe repair` on the session") from None


def _read_log(path: Path, fast: Callable[[bytes], pa.Table],
              by_records: Callable[[list[dict[str, Any]]], pa.Table]) -> pa.Table:
    """A JSON-lines log as a table: `fast` (arrow's reader) on its complete lines, else
    `by_records` on the lines parsed one by one, which names a corrupt line."""
    lines = _complete_lines(path) if path.exists() else b""
    if lines.strip():
        with contextlib.suppress(pa.ArrowException):
            return fast(lines)
    return by_records(list(_parse_lines(lines, path)))


class Session:
    """A session on disk, opened for reading."""

    def __init__(self, path: Path, manifest: SessionManifest) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: Path | str) -> Session:
        path = Path(path)
        manifest_path = path / layout.MANIFEST
        if not manifest_path.is_file():
            raise SessionError(f"{path} is not a session: {layout.MANIFEST} is missing")
        try:
            manifest = SessionManifest.model_validate_json(manifest_path.read_bytes())
        except ValidationError as exc:
            raise SessionError(f"{manifest_path} is not a valid manifest: {exc}") from None
        return cls(path, manifest)

    def file(self, role: str) -> Path:
        """The path of a session file by role (see `capture._layout.session_paths`)."""
        return layout.session_paths(self.path)[role]

    def state_records(self) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.path / layout.STATE)

    def sync_records(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.path / layout.SYNC))

    def events(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.path / layout.EVENTS))

    def read_state(self) -> pa.Table:
        """Stored samples as one flat table sorted by seq: `arrival_mono_ns`,
        `arrival_wall_ns` and the sample's fields as columns (`seq`, `t`, `camera.cframe`)."""
        path = self.path / layout.STATE
        try:
            table = _read_log(path, state_table, state_table_from_records)
        except KeyError as exc:
            raise SessionError(f"{path}: a record has no {exc}; it is not a state log "
                               "record") from None
        except (pa.ArrowException, TypeError, OverflowError) as exc:
            raise SessionError(f"{path}: a record does not match the sample schema ({exc}); "
                               "it is not a state log the receiver wrote") from None
        if table.column("seq").null_count:
            raise SessionError(f"{path}: {table.column('seq').null_count} record(s) hold no "
                               "sample seq; it is not a state log the receiver wrote")
        return table

    def read_frames(self) -> pa.Table:
        """The frame table: index, pts_us, grab_start_ns, grab_end_ns, wall_ns, dropped_before."""
        path = self.path / layout.FRAMES
        try:
            return _read_log(path, frames_table, frames_table_from_records)
        except (AttributeError, pa.ArrowException, TypeError, OverflowError) as exc:
            raise SessionError(f"{path}: a record is not a frame row ({exc}); it is not a "
                               "frame table the recorder wrote") from None

    def iter_frames(self, start: int = 0) -> Iterator[VideoFrame]:
        """Decode the video in order, yielding each frame with its frame-table index and pts,
        from frame index `start` on.

        Frames are matched to the table by pts, so a frame the encoder lost is skipped
        rather than shifting every later index. A `start` past the first frame seeks to the
        keyframe at or before it, so reading a range late in a long video does not decode
        everything before it."""
        from fractions import Fraction

        import av

        video = self.path / layout.VIDEO
        if not video.is_file():
            raise SessionError(f"{self.path} has no video ({layout.VIDEO})")
        frames = self.read_frames()
        capture = self.manifest.capture
        size = (capture.region.height, capture.region.width) if capture else None
        index_by_pts = dict(zip(frames["pts_us"].to_pylist(), frames["index"].to_pylist(),
                                strict=True))
        try:
            container = av.open(str(video))
        except av.FFmpegError as exc:
            raise SessionError(f"cannot open {video}: {exc}") from None
        with container:
            if not container.streams.video:
                raise SessionError(f"{video} holds no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base
            later = [p for p, i in index_by_pts.items() if i >= start] if start > 0 else []
            try:
                if later and tb is not None:
                    # backward: the keyframe at or before the target; frames before `start`
                    # are decoded (needed to reach it) and skipped below
                    container.seek(int(Fraction(min(later), 1_000_000) / tb), stream=stream,
                                   backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    pts_us = round(frame.pts * tb * 1_000_000)
                    index = index_by_pts.get(pts_us)
                    if index is None or index < start:
                        continue
                    image = frame.to_ndarray(format="rgb24")
                    if size is not None:
                        image = image[: size[0], : size[1]]  # the encoder's even-size padding
                    yield VideoFrame(index, pts_us, image)
            except av.FFmpegError as exc:
                raise SessionError(f"{video} cannot be decoded: {exc}") from None
