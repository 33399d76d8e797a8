"""Searches across sessions with DuckDB over their parquet files: frames whose labels match
a state filter, and frames whose caption contains a text.

Each search reads `read_parquet([...])` over the label files of every labelled session,
joined to a (file, session id) table so each row carries its session. File names, session
ids and values are all bound parameters; the only SQL text built here is the predicate of
`serve._filters`, whose names come from the files' own schema. These functions block
(disk and CPU): the routes run them in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from capture._layout import ANNOTATIONS, LABELS
from serve._filters import FieldSpec, FilterError, StateFilter, compile_filter, fields_from_schema

logger = logging.getLogger(__name__)

_FILES = ("(SELECT unnest(?::VARCHAR[]) AS filename, unnest(?::VARCHAR[]) AS session) AS f")


@dataclass(frozen=True)
class Hit:
    """One frame found by a search."""

    session: str
    frame: int
    t: float
    caption: str = ""
    source: str = ""


@dataclass(frozen=True)
class Page:
    """A page of hits and how many there are in all."""

    hits: tuple[Hit, ...]
    total: int


def _readable(path: Path) -> bool:
    try:
        pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        logger.warning("leaving %s out of searches: %s", path, exc)
        return False
    return True


def label_files(sessions: Mapping[str, Path]) -> dict[str, str]:
    """{labels.parquet path: session id} of the sessions that have readable labels (an
    unreadable file is left out, logged, rather than failing every search)."""
    return {str(path / LABELS): sid for sid, path in sorted(sessions.items())
            if (path / LABELS).is_file() and _readable(path / LABELS)}


def caption_files(sessions: Mapping[str, Path]) -> dict[str, str]:
    """{caption shard path: session id} of the model captions of `stpe annotate`."""
    out: dict[str, str] = {}
    for sid, path in sorted(sessions.items()):
        for shard in sorted((path / ANNOTATIONS / "caption").glob("shard-*.parquet")):
            if _readable(shard):
                out[str(shard)] = sid
    return out


def searchable_fields(files: Mapping[str, str]) -> dict[str, FieldSpec]:
    """The fields every label file can be filtered on (those common to all their schemas)."""
    common: dict[str, FieldSpec] | None = None
    for path in files:
        fields = fields_from_schema(pq.read_schema(path))
        common = fields if common is None else {k: v for k, v in common.items()
                                                if fields.get(k) == v}
    return common or {}


def _connect() -> Any:
    import duckdb

    return duckdb.connect(":memory:", config={"threads": 2})


def _page(rows: list[tuple], with_caption: bool) -> Page:
    total = int(rows[0][-1]) if rows else 0
    hits = tuple(Hit(r[0], int(r[1]), float(r[2]), *(r[3:5] if with_caption else ()))
                 for r in rows)
    return Page(hits, total)


def search_state(sessions: Mapping[str, Path], query: StateFilter) -> Page:
    """The frames of all labelled sessions where every condition of `query` holds, ordered
    by session and frame; FilterError for a filter the files cannot answer."""
    files = label_files(sessions)
    if not files:
        return Page((), 0)
    predicate, params = compile_filter(query.where, searchable_fields(files))
    # one scan keeps the (few-column) matches; the total and the page are read from them,
    # cheaper than a window count over the scan
    sql = (f"CREATE TEMP TABLE hits AS SELECT f.session, l.frame_index, l.t "
           f"FROM read_parquet(?, filename=true, union_by_name=true) AS l JOIN {_FILES} "
           f"USING (filename) WHERE {predicate}")
    names = list(files)
    with _connect() as db:
        db.execute(sql, [names, names, list(files.values()), *params])
        total = db.execute("SELECT count(*) FROM hits").fetchone()[0]
        rows = db.execute("SELECT session, frame_index, t FROM hits ORDER BY session, "
                          "frame_index LIMIT ? OFFSET ?", [query.limit, query.offset]).fetchall()
    return Page(tuple(Hit(r[0], int(r[1]), float(r[2])) for r in rows), int(total))


def search_captions(sessions: Mapping[str, Path], text: str, limit: int, offset: int) -> Page:
    """Frames whose caption contains `text` (case-insensitive): the state captions of
    labels.parquet (source "labels") and the model captions of annotations ("model")."""
    if not text.strip():
        raise FilterError("the caption text is empty")
    parts, params = [], []
    for files, source in ((label_files(sessions), "labels"), (caption_files(sessions), "model")):
        if files:
            parts.append(f"SELECT f.session, l.frame_index, l.t, l.caption, '{source}' AS source "
                         f"FROM read_parquet(?, filename=true, union_by_name=true) AS l "
                         f"JOIN {_FILES} USING (filename) "
                         f"WHERE contains(lower(l.caption), lower(?))")
            params += [list(files), list(files), list(files.values()), text]
    if not parts:
        return Page((), 0)
    sql = (f"SELECT *, count(*) OVER () FROM ({' UNION ALL '.join(parts)}) "
           f"ORDER BY session, frame_index, source LIMIT ? OFFSET ?")
    with _connect() as db:
        rows = db.execute(sql, [*params, limit, offset]).fetchall()
    return _page(rows, with_caption=True)
