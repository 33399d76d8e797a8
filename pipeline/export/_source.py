"""What every exporter reads: the labelled, state-matched frames of a session, decoded, with
their state and action vectors, optionally thinned to a frame rate and with the timecode
strip masked or cropped away."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from capture import Session, SessionError
from pipeline._errors import PipelineError
from pipeline.export._vectors import action_vectors, state_vectors
from pipeline.labels import labels_summary, read_label_events, read_labels
from pipeline.labels._inputs import read_aligned_table, vectors

Timecode = Literal["keep", "mask", "crop"]

# docs/timecode.md: 40 x 3 cells of 8 viewport px at the viewport's bottom-left corner
STRIP_CELLS = (40, 3)
STRIP_CELL_PX = 8.0


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

    def finished(self, path: Path) -> None:
        """Report a complete output file."""
        if self.on_file is not None:
            self.on_file(path)


@dataclass(frozen=True)
class SessionData:
    """One session ready to export: the kept rows of its labels and their vectors."""

    session: Session
    labels: pa.Table  # kept rows only
    state: np.ndarray  # (n, len(STATE_NAMES)) float32
    action: np.ndarray  # (n, len(ACTION_NAMES)) float32
    strip: tuple[int, int, int, int] | None  # x0, y0, x1, y1 captured px of the strip
    size: tuple[int, int]  # width, height of the exported images
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    split: str = "train"

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


def load_session(path: Any, options: ExportOptions) -> SessionData:
    """Open a labelled session and choose the frames to export."""
    session = Session.open(path)
    labels = read_labels(session)
    aligned = read_aligned_table(session)
    if not aligned["frame_index"].equals(labels["frame_index"]):
        raise PipelineError(f"{session.path}: labels.parquet does not match aligned.parquet; "
                            f"re-run `stpe labels {session.path}`")
    t = labels["t"].to_numpy()
    wanted = labels["K"].is_valid().to_numpy(zero_copy_only=False)
    ranges = dict(options.frames).get(session.path.name)
    if ranges is not None:
        wanted = wanted & _in_ranges(labels["frame_index"].to_numpy(), ranges)
    keep = _keep_rows(t, wanted, options.fps_cap)
    if len(keep) == 0:
        raise PipelineError(f"{session.path} has no frames with state to export; check "
                            "the alignment report (alignment.json)")
    capture = session.manifest.capture
    if capture is None or not session.file("video").is_file():
        raise PipelineError(f"{session.path} has no video to export")
    width, height = capture.region.width, capture.region.height
    strip = None
    if options.timecode != "keep":
        scale = vectors(aligned, "capture_scale", 2)[keep[0]]
        offset = vectors(aligned, "capture_offset", 2)[keep[0]]
        viewport_h = vectors(aligned, "camera.viewport", 2)[keep[0], 1]
        strip = strip_rect(scale, offset, viewport_h, (width, height))
        if options.timecode == "crop":
            height = strip[1] - strip[1] % 2  # keep even sizes for 4:2:0 video
    kept = aligned.take(pa.array(keep))
    return SessionData(session=session, labels=labels.take(pa.array(keep)),
                       state=state_vectors(kept), action=action_vectors(kept), strip=strip,
                       size=(width, height), summary=labels_summary(labels),
                       events=read_label_events(session))


def iter_images(data: SessionData, options: ExportOptions) -> Iterator[tuple[int, np.ndarray]]:
    """(row in data.labels, RGB image) for every kept frame, in order, with the timecode
    strip handled as `options` say; `options.on_image` is called for each."""
    timecode = options.timecode
    wanted = {int(f): i for i, f in enumerate(data.labels["frame_index"].to_pylist())}
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
