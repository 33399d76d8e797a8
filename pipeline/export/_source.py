"""What every exporter reads: the labelled, state-matched frames of a session, decoded, with
their state and action vectors, optionally thinned to a frame rate and with the timecode
strip masked or cropped away."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa

from capture import Session, SessionError
from pipeline._errors import PipelineError
from pipeline.export._vectors import ALIGNED_COLUMNS, action_vectors, state_vectors
from pipeline.labels import iter_labels, labels_schema, labels_summary
from pipeline.labels._inputs import iter_aligned, vectors

Timecode = Literal["keep", "mask", "crop"]

# docs/timecode.md: 40 x 3 cells of 8 viewport px at the viewport's bottom-left corner
STRIP_CELLS = (40, 3)
STRIP_CELL_PX = 8.0
LABEL_BATCH = 256  # rows of labels.parquet / aligned.parquet held at once (as Python
# objects, a frame of 40 entities takes about 55 KB)


@dataclass(frozen=True)
class ExportOptions:
    """Options shared by every format."""

    timecode: Timecode = "mask"
    shard_mb: float = 256.0
    fps_cap: float | None = None
    gop: int = 2  # keyframe interval of LeRobot video, as LeRobot's own encoder
    splits: tuple[tuple[str, float], ...] = (("train", 1.0),)
    seed: int = 0
    license: str = "other"  # the card's license (a Hub license id)
    # only these inclusive frame-index ranges of the named sessions (by folder name);
    # a session not named keeps all its frames
    frames: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    on_image: Callable[[], None] | None = field(default=None, compare=False)  # per frame read
    # called with each output file once it is complete (object storage uploads it)
    on_file: Callable[[Path], None] | None = field(default=None, compare=False)
    # opens an output file for writing front to back straight to object storage
    open_remote: Callable[[Path], BinaryIO] | None = field(default=None, compare=False)

    def finished(self, path: Path) -> None:
        """Report a complete output file."""
        if self.on_file is not None:
            self.on_file(path)

    @contextmanager
    def sequential(self, path: Path) -> Iterator[Path | BinaryIO]:
        """Where to write `path`, a file written front to back: a stream straight to object
        storage when the export goes there (nothing staged), else the local file, reported
        finished once written."""
        if self.open_remote is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield path
            self.finished(path)
            return
        with self.open_remote(path) as stream:
            yield stream


@dataclass(frozen=True)
class SessionData:
    """One session ready to export: which rows of its labels.parquet are kept, with their
    frame indices, times and vectors. The labels themselves stay on disk and are read a
    batch at a time (`label_batches`), so memory does not grow with the session's length
    beyond these few numbers per frame."""

    session: Session
    rows: np.ndarray  # (n,) kept rows of labels.parquet, ascending
    frames: np.ndarray  # (n,) their frame_index, int64
    t: np.ndarray  # (n,) their capture times, float64
    state: np.ndarray  # (n, len(STATE_NAMES)) float32
    action: np.ndarray  # (n, len(ACTION_NAMES)) float32
    strip: tuple[int, int, int, int] | None  # x0, y0, x1, y1 captured px of the strip
    size: tuple[int, int]  # width, height of the exported images
    summary: dict[str, Any]
    labels_schema: pa.Schema
    split: str = "train"

    @property
    def count(self) -> int:
        """The number of kept frames."""
        return len(self.rows)

    @property
    def name(self) -> str:
        return self.session.manifest.session_id


def _keep_rows(t: np.ndarray, has_state: np.ndarray, fps_cap: float | None) -> np.ndarray:
    rows = np.flatnonzero(has_state)
    if fps_cap is None or len(rows) == 0:
        return rows
    kept, last = [], -np.inf
    for r in rows:  # greedy: a frame at least 1/fps_cap after the last kept one
        if t[r] - last >= 1.0 / fps_cap - 1e-6:
            kept.append(r)
            last = t[r]
    return np.asarray(kept, dtype=np.int64)


def _in_ranges(frame_index: np.ndarray, ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    inside = np.zeros(len(frame_index), dtype=bool)
    for first, last in ranges:
        inside |= (frame_index >= first) & (frame_index <= last)
    return inside


def strip_rect(scale: np.ndarray, offset: np.ndarray, viewport_h: float,
               frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """The timecode strip's rectangle in captured px (rounded outwards, inside the frame)."""
    w, h = STRIP_CELLS[0] * STRIP_CELL_PX, STRIP_CELLS[1] * STRIP_CELL_PX
    x0, y0 = offset[0], scale[1] * (viewport_h - h) + offset[1]
    x1, y1 = scale[0] * w + offset[0], scale[1] * viewport_h + offset[1]
    return (max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0),
            min(int(np.ceil(x1)), frame[0]), min(int(np.ceil(y1)), frame[1]))


def _label_index(session: Session) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frame_index, t and whether the frame has state (K), for every row of the labels."""
    frames, times, valid = [], [], []
    for part in iter_labels(session, ["frame_index", "t", "K"], LABEL_BATCH):
        frames.append(part["frame_index"].to_numpy(zero_copy_only=False).astype(np.int64))
        times.append(part["t"].to_numpy(zero_copy_only=False).astype(np.float64))
        valid.append(part["K"].is_valid().to_numpy(zero_copy_only=False))
    if not frames:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
    return np.concatenate(frames), np.concatenate(times), np.concatenate(valid)


def _kept_aligned(session: Session, frames: np.ndarray, keep: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """State and action vectors of the kept rows and the first kept aligned row, reading
    aligned.parquet a batch at a time; its frames must be the labels' frames."""
    mismatch = PipelineError(f"{session.path}: labels.parquet does not match "
                             f"aligned.parquet; re-run `stpe labels {session.path}`")
    state, action, first, seen = [], [], None, 0
    for part in iter_aligned(session, (*ALIGNED_COLUMNS, "frame_index", "capture_scale",
                                       "capture_offset", "camera.viewport"), LABEL_BATCH):
        n = part.num_rows
        if not np.array_equal(part["frame_index"].to_numpy(), frames[seen:seen + n]):
            raise mismatch
        lo, hi = np.searchsorted(keep, [seen, seen + n])
        if hi > lo:
            kept = part.take(pa.array(keep[lo:hi] - seen))
            state.append(state_vectors(kept))
            action.append(action_vectors(kept))
            first = first if first is not None else kept.slice(0, 1)
        seen += n
    if seen != len(frames) or first is None:
        raise mismatch
    return np.concatenate(state), np.concatenate(action), first


def load_session(path: Any, options: ExportOptions) -> SessionData:
    """Open a labelled session and choose the frames to export."""
    session = Session.open(path)
    schema = labels_schema(session)
    frames, t, wanted = _label_index(session)
    ranges = dict(options.frames).get(session.path.name)
    if ranges is not None:
        wanted = wanted & _in_ranges(frames, ranges)
    keep = _keep_rows(t, wanted, options.fps_cap)
    if len(keep) == 0:
        raise PipelineError(f"{session.path} has no frames with state to export; check "
                            "the alignment report (alignment.json)")
    capture = session.manifest.capture
    if capture is None or not session.file("video").is_file():
        raise PipelineError(f"{session.path} has no video to export")
    state, action, first = _kept_aligned(session, frames, keep)
    width, height = capture.region.width, capture.region.height
    strip = None
    if options.timecode != "keep":
        scale = vectors(first, "capture_scale", 2)[0]
        offset = vectors(first, "capture_offset", 2)[0]
        viewport_h = vectors(first, "camera.viewport", 2)[0, 1]
        strip = strip_rect(scale, offset, viewport_h, (width, height))
        if options.timecode == "crop":
            height = strip[1] - strip[1] % 2  # keep even sizes for 4:2:0 video
    return SessionData(session=session, rows=keep, frames=frames[keep], t=t[keep],
                       state=state, action=action, strip=strip, size=(width, height),
                       summary=labels_summary(schema), labels_schema=schema)


def label_batches(data: SessionData, columns: Sequence[str] | None = None
                  ) -> Iterator[pa.Table]:
    """The kept rows of the session's labels.parquet (all or `columns`), in order, as
    tables of at most LABEL_BATCH rows."""
    seen = 0
    for part in iter_labels(data.session, columns, LABEL_BATCH):
        n = part.num_rows
        lo, hi = np.searchsorted(data.rows, [seen, seen + n])
        if hi > lo:
            yield pa.Table.from_batches([part]).take(pa.array(data.rows[lo:hi] - seen))
        seen += n


def label_rows(data: SessionData, columns: Sequence[str] | None = None
               ) -> Iterator[dict[str, Any]]:
    """The kept rows of the labels as dicts, in order, a batch of Python objects at a time."""
    for part in label_batches(data, columns):
        yield from part.to_pylist()


def iter_images(data: SessionData, options: ExportOptions) -> Iterator[tuple[int, np.ndarray]]:
    """(kept row: index into data.frames, RGB image) for every kept frame, in order, with
    the timecode strip handled as `options` say; `options.on_image` is called for each."""
    timecode = options.timecode
    wanted = {int(f): i for i, f in enumerate(data.frames.tolist())}
    seen = 0
    try:
        for frame in data.session.iter_frames():
            row = wanted.get(frame.index)
            if row is None:
                continue
            image = frame.image
            if timecode == "mask" and data.strip is not None:
                image = image.copy()
                x0, y0, x1, y1 = data.strip
                image[y0:y1, x0:x1] = 0
            elif timecode == "crop":
                image = image[: data.size[1]]
            seen += 1
            if options.on_image is not None:
                options.on_image()
            yield row, np.ascontiguousarray(image)
    except SessionError as exc:
        raise PipelineError(f"cannot decode the video of {data.session.path}: {exc}") from None
    if seen != len(wanted):
        raise PipelineError(f"{data.session.path}: the video holds {seen} of the "
                            f"{len(wanted)} labelled frames; run `stpe repair` and `stpe align`")
