"""Reading and writing a session's label files, each written atomically (temp + rename).

Derived stage outputs go next to the recording logs but never touch them: a failed run
leaves the previous labels (or none) in place, never a half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from capture import Session
from capture._layout import LABEL_EVENTS, LABELS
from pipeline._errors import PipelineError
from pipeline.labels._compute import Labels
from pipeline.labels._inputs import iter_parquet

SUMMARY_KEY = b"stpe.labels.summary"
# Rows per Parquet row group (about 17 s at 60 fps): a reader streaming the file holds one
# group (a few MB at a few KB per frame), not the session, and one that wants a few frames
# (the player of `stpe serve`, a query filtering on frame_index) decodes one group.
ROW_GROUP = 1024


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP)
    return sink.getvalue().to_pybytes()


def write_labels(session: Session, labels: Labels) -> tuple[Path, Path]:
    """Write labels.parquet (summary in its schema metadata) and label_events.jsonl."""
    meta = dict(labels.table.schema.metadata or {})
    meta[SUMMARY_KEY] = json.dumps(labels.summary, sort_keys=True).encode()
    table = labels.table.replace_schema_metadata(meta)
    labels_path, events_path = session.path / LABELS, session.path / LABEL_EVENTS
    events = b"".join(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) + b"\n"
                      for e in labels.events)
    write_atomic(labels_path, _parquet_bytes(table))
    write_atomic(events_path, events)
    return labels_path, events_path


def _labels_path(session: Session) -> Path:
    path = session.path / LABELS
    if not path.is_file():
        raise PipelineError(f"{session.path} has no {LABELS}; run `stpe labels "
                            f"{session.path}` first")
    return path


def _unreadable(session: Session, exc: Exception) -> PipelineError:
    return PipelineError(f"{session.path / LABELS} is not a readable parquet file ({exc}); "
                         f"re-create it with `stpe labels {session.path}`")


def read_labels(session: Session) -> pa.Table:
    """`<session>/labels.parquet`; a PipelineError naming `stpe labels` when missing."""
    path = _labels_path(session)
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(session, exc) from None


def labels_schema(session: Session) -> pa.Schema:
    """The schema (with the summary metadata) of `<session>/labels.parquet`, rows unread."""
    path = _labels_path(session)
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(session, exc) from None


def iter_labels(session: Session, columns: Sequence[str] | None = None,
                batch: int = 1024) -> Iterator[pa.RecordBatch]:
    """`<session>/labels.parquet` in order, `batch` rows at a time (all or `columns`), so
    memory holds one row group and one batch whatever the session's length."""
    path = _labels_path(session)
    try:
        with pq.ParquetFile(path) as file:
            yield from iter_parquet(file, columns, batch)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(session, exc) from None


def labels_summary(table: pa.Table | pa.Schema) -> dict[str, Any]:
    """The summary stored in a labels table's (or schema's) metadata ({} when absent)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    raw = (schema.metadata or {}).get(SUMMARY_KEY)
    return json.loads(raw) if raw else {}


def read_label_events(session: Session) -> list[dict[str, Any]]:
    """The records of `<session>/label_events.jsonl` ([] when absent)."""
    path = session.path / LABEL_EVENTS
    if not path.is_file():
        return []
    try:
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise PipelineError(f"{path} is corrupt ({exc}); re-create it with "
                            f"`stpe labels {session.path}`") from None
