"""What the stages read: the labels of `stpe labels` and the decoded frames, prefetched.

Labels come from `<session>/labels.parquet` (one row per frame) and
`<session>/label_events.jsonl` (events with frame ranges); frames are decoded once, on a
CPU thread, into whole shards in a bounded queue, so the models never wait on the decoder.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from capture import Session, SessionError, VideoFrame, read_jsonl
from pipeline._errors import PipelineError

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("frame_index", "t", "objects", "humanoid_state", "grounded", "speed",
                 "move_dir_cam", "keys", "caption")
_EVENT_FIELDS = ("kind", "start_frame", "end_frame", "start_t", "end_t")
MOVE_DIRECTIONS = ("forward", "back", "left", "right", "forward-left", "forward-right",
                   "back-left", "back-right", "none")


@dataclass(frozen=True)
class LabeledObject:
    """A true object of a frame: the character or a tagged entity, with its projected box."""

    id: str
    name: str
    kind: str
    box_xyxy: tuple[float, float, float, float]
    on_screen: bool


@dataclass(frozen=True)
class FrameLabel:
    """The exact state of one frame, as `stpe labels` derived it."""

    frame_index: int
    t: float
    objects: tuple[LabeledObject, ...]
    humanoid_state: str
    grounded: bool
    speed: float
    move_dir_cam: str
    keys: tuple[str, ...]
    caption: str
    has_state: bool = True  # False when the frame has no character state (nothing known)


@dataclass(frozen=True)
class LabelEvent:
    """An event with its frame range (jump, land, start/stop moving, press, turn, ...) and
    its details (`key` of a press, `subject` and `direction` and `degrees` of a turn)."""

    kind: str
    start_frame: int
    end_frame: int
    details: tuple[tuple[str, Any], ...] = ()

    def detail(self, name: str, default: Any = None) -> Any:
        return dict(self.details).get(name, default)


def _missing_labels(session: Session, what: str) -> PipelineError:
    return PipelineError(f"{session.file('labels')}: {what}; run `stpe labels "
                         f"{session.path}` first (the segment and caption stages need labels)")


def read_labels(session: Session) -> dict[int, FrameLabel]:
    """Per-frame labels by frame index; a clear error naming `stpe labels` when absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = session.file("labels")
    if not path.is_file():
        raise _missing_labels(session, "labels.parquet is missing")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _missing_labels(session, f"not a readable parquet file ({exc})") from None
    missing = [c for c in LABEL_COLUMNS if c not in table.column_names]
    if missing:
        raise _missing_labels(session, f"columns {', '.join(missing)} are missing")
    labels: dict[int, FrameLabel] = {}
    for row in table.select(list(LABEL_COLUMNS)).to_pylist():
        labels[int(row["frame_index"])] = _frame_label(row)
    return labels


def _frame_label(row: dict[str, Any]) -> FrameLabel:
    objects = tuple(
        LabeledObject(id=str(o["id"]), name=str(o["name"]), kind=str(o["kind"]),
                      box_xyxy=tuple(float(v) for v in o["box_xyxy"]),
                      on_screen=bool(o["on_screen"]))
        for o in row["objects"] or ())
    return FrameLabel(frame_index=int(row["frame_index"]), t=float(row["t"]), objects=objects,
                      humanoid_state=str(row["humanoid_state"] or ""),
                      grounded=bool(row["grounded"]), speed=float(row["speed"] or 0.0),
                      move_dir_cam=str(row["move_dir_cam"] or "none"),
                      keys=tuple(row["keys"] or ()), caption=str(row["caption"] or ""),
                      has_state=row["humanoid_state"] is not None)


def read_label_events(session: Session) -> tuple[LabelEvent, ...]:
    """Events of `label_events.jsonl`, sorted by start frame (none when the file is absent)."""
    path = session.file("label_events")
    try:
        records = list(read_jsonl(path))
    except SessionError as exc:
        raise PipelineError(f"{exc}; re-run `stpe labels {session.path}`") from None
    events = []
    for number, record in enumerate(records, 1):
        try:
            details = tuple(sorted((str(k), v) for k, v in record.items()
                                   if k not in _EVENT_FIELDS and isinstance(v, str | int | float)))
            events.append(LabelEvent(kind=str(record["kind"]),
                                     start_frame=int(record["start_frame"]),
                                     end_frame=int(record["end_frame"]), details=details))
        except (KeyError, TypeError, ValueError):
            raise PipelineError(f"{path}: event {number} lacks kind/start_frame/end_frame; "
                                f"re-run `stpe labels {session.path}`") from None
    return tuple(sorted(events, key=lambda e: (e.start_frame, e.kind)))


class _Done:
    """End-of-stream marker (carries the decoder's exception, if any)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


Shard = tuple[int, list[VideoFrame], list[VideoFrame]]  # number, frames, frames before it


def _shards(frames: Iterator[VideoFrame], size: int, overlap: int) -> Iterator[Shard]:
    """(shard number, its `size` frames, the `overlap` frames before it) from a stream."""
    before: deque[VideoFrame] = deque(maxlen=max(overlap, 1))
    current: list[VideoFrame] = []
    shard = 0
    for frame in frames:
        current.append(frame)
        if len(current) == size:
            yield shard, current, list(before) if overlap else []
            before.extend(current)
            current, shard = [], shard + 1
    if current:
        yield shard, current, list(before) if overlap else []


def prefetch_shards(session: Session, size: int, overlap: int, depth: int,
                    last: int | None = None) -> Iterator[Shard]:
    """Decode `session` once on a thread into whole shards, at most `depth` shards ahead of
    the consumer, so the models never wait on the decoder while it keeps up (decoding a
    shard overlaps computing the previous one). Decoding stops after shard `last`.

    Closing the iterator early stops the decoder thread; a decoder error is re-raised here."""
    items: queue.Queue[Shard | _Done] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: Shard | _Done) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        error: BaseException | None = None
        try:
            for shard in _shards(session.iter_frames(), size, overlap):
                if not put(shard) or (last is not None and shard[0] >= last):
                    break
        except BaseException as exc:  # re-raised in the consumer
            error = exc
        put(_Done(error))

    thread = threading.Thread(target=decode, name="stpe-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
