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
from collections.abc import Iterator, Sequence
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


class FrameStream(Sequence[VideoFrame]):
    """The frames of one shard as the decoder delivers them: indexing waits until the frame
    is decoded, so a stage starts on the first frames while the rest are still decoding.
    Its length is the expected frame count until the stream ends early."""

    def __init__(self, expected: int) -> None:
        self._frames: list[VideoFrame] = []
        self._expected = expected
        self._done = False
        self._error: BaseException | None = None
        self._ready = threading.Condition()

    def append(self, frame: VideoFrame) -> None:
        with self._ready:
            self._frames.append(frame)
            self._ready.notify_all()

    def decoded(self) -> int:
        """Frames delivered so far."""
        return len(self._frames)

    def finish(self, error: BaseException | None = None) -> None:
        """No more frames (`error`: why decoding stopped, re-raised to readers)."""
        with self._ready:
            self._done, self._error = True, error
            self._expected = len(self._frames)
            self._ready.notify_all()

    def _wait(self, count: int) -> None:
        with self._ready:
            self._ready.wait_for(lambda: len(self._frames) >= count or self._done)
            if self._error is not None:
                raise self._error

    def __len__(self) -> int:
        return self._expected

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        if isinstance(key, slice):
            indices = range(*key.indices(self._expected))
            if indices:
                self._wait(max(indices) + 1)
            return self._frames[key]
        index = key + self._expected if key < 0 else key
        self._wait(index + 1)
        if not 0 <= index < len(self._frames):
            raise IndexError(key)
        return self._frames[index]


Shard = tuple[int, FrameStream, list[VideoFrame]]  # number, its frames, frames before it


def prefetch_shards(session: Session, size: int, overlap: int, depth: int,
                    last: int | None = None) -> Iterator[Shard]:
    """Decode `session` once, on a thread, into shards of `size` frames (with the `overlap`
    frames before each). A shard is handed over as soon as its first frame is decoded and
    fills while the stages work on it; the decoder runs at most `depth` shards ahead of
    the consumer. Decoding stops after shard `last`.

    Closing the iterator early stops the decoder thread; a decoder error is re-raised to
    the reader of the frames it cut short, or here."""
    total = session.read_frames().num_rows
    items: queue.Queue[Shard | None] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item: Shard | None) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        before: deque[VideoFrame] = deque(maxlen=max(overlap, 1))
        stream: FrameStream | None = None
        shard = 0
        try:
            for frame in session.iter_frames():
                if stop.is_set():
                    return
                if stream is None:
                    stream = FrameStream(max(1, min(size, total - shard * size)))
                    if not put((shard, stream, list(before) if overlap else [])):
                        return
                stream.append(frame)
                before.append(frame)
                if stream.decoded() == size:
                    stream.finish()
                    if (last is not None and shard >= last) or stop.is_set():
                        stream = None
                        break
                    stream, shard = None, shard + 1
            if stream is not None:
                stream.finish()
        except BaseException as exc:  # re-raised to the consumer
            failure.append(exc)
            if stream is not None:
                stream.finish(exc)
        put(None)

    thread = threading.Thread(target=decode, name="stpe-decode", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not None:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()
