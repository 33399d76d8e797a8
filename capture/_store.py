"""The session store: the only code that writes a session's files.

`SessionWriter` creates a session and appends to its logs (each append is one unbuffered
write, so a crash loses at most the write in flight); `Session` opens one for reading.
Both are safe to use from several threads.
"""

from __future__ import annotations

import contextlib
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
from capture._errors import SessionError
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
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class SessionWriter:
    """Appends to one session's logs; `finalize()` marks it complete (idempotent)."""

    def __init__(self, path: Path, manifest: SessionManifest) -> None:
        self.path = path
        self._manifest = manifest
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._closed = False

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
        writer._save_manifest()
        writer.append_event("start")
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
        data = b"".join(line + b"\n" for line in lines)
        if not data:
            return
        with self._lock:
            if self._closed:
                raise SessionError(f"session {self.path} is closed; reopen it to append")
            fd = self._fds.get(name)
            if fd is None:
                fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._fds[name] = fd
            _write_all(fd, data)

    def append_state(self, lines: Iterable[bytes]) -> None:
        """Append serialized StateRecord lines (no trailing newline) in one write."""
        self._append(layout.STATE, lines)

    def append_sync(self, records: Iterable[dict[str, Any]]) -> None:
        self._append(layout.SYNC, (orjson.dumps(r) for r in records))

    def append_frames(self, records: Iterable[dict[str, Any]]) -> None:
        self._append(layout.FRAMES, (orjson.dumps(r) for r in records))

    def append_event(self, kind: str, **fields: Any) -> None:
        anchor = now_anchor()
        record = {"kind": kind, "host_mono_ns": anchor.host_mono_ns,
                  "host_wall_ns": anchor.host_wall_ns, **fields}
        self._append(layout.EVENTS, [orjson.dumps(record)])

    def sync_to_disk(self) -> None:
        """fsync every open log (the logs are already in the OS after each append)."""
        with self._lock:
            for fd in self._fds.values():
                os.fsync(fd)

    def finalize(self, status: Status = "complete") -> None:
        """Write the stop anchor and status, close the logs. Safe to call twice."""
        if self._closed:
            return
        self.append_event("stop", status=status)
        self.update_manifest(status=status, stopped=now_anchor())
        self.close()

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.fsync(fd)
                os.close(fd)
            self._fds.clear()
            self._closed = True

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        """Decode the video in order, yielding each frame with its frame-table index and pts.

        Frames are matched to the table by pts, so a frame the encoder lost is skipped
        rather than shifting every later index."""
        import av

        video = self.path / layout.VIDEO
        if not video.is_file():
            raise SessionError(f"{self.path} has no video ({layout.VIDEO})")
        frames = self.read_frames()
        capture = self.manifest.capture
        size = (capture.region.height, capture.region.width) if capture else None
        index_by_pts = dict(zip(frames["pts_us"].to_pylist(), frames["index"].to_pylist(),
                                strict=True))
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                pts_us = round(frame.pts * tb * 1_000_000)
                index = index_by_pts.get(pts_us)
                if index is None or index < start:
                    continue
                image = frame.to_ndarray(format="rgb24")
                if size is not None:
                    image = image[: size[0], : size[1]]  # drop the encoder's even-size padding
                yield VideoFrame(index, pts_us, image)
