"""Reading and writing a session's label files, each written atomically (temp + rename).

Derived stage outputs go next to the recording logs but never touch them: a failed run
leaves the previous labels (or none) in place, never a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from capture import Session
from capture._layout import LABEL_EVENTS, LABELS
from pipeline._errors import PipelineError
from pipeline.labels._compute import Labels

SUMMARY_KEY = b"stpe.labels.summary"
# Rows per Parquet row group (about a minute at 60 fps): a reader that wants a few frames
# (the player of `stpe serve`, a query filtering on frame_index) decodes one group, not the
# whole file.
ROW_GROUP_ROWS = 4096


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
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
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


def read_labels(session: Session) -> pa.Table:
    """`<session>/labels.parquet`; a PipelineError naming `stpe labels` when missing."""
    path = session.path / LABELS
    if not path.is_file():
        raise PipelineError(f"{session.path} has no {LABELS}; run `stpe labels "
                            f"{session.path}` first")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise PipelineError(f"{path} is not a readable parquet file ({exc}); re-create it "
                            f"with `stpe labels {session.path}`") from None


def labels_summary(table: pa.Table) -> dict[str, Any]:
    """The summary stored in a labels table's metadata ({} when absent)."""
    raw = (table.schema.metadata or {}).get(SUMMARY_KEY)
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
