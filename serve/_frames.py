"""Windows of per-frame rows for the player, read from the session's Parquet tables without
loading them whole: only the row groups whose `frame_index` statistics overlap the window
are decoded, so a seek costs the same in a one-hour session as in a short one.

A window joins labels.parquet (what is drawn) with the frame's video time `pts_us` and size
from aligned.parquet (frame index -> video time comes from the table, never from an fps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capture._guard import RefusedError
from capture._layout import ALIGNED, LABELS
from serve._context import session_file

MAX_COUNT = 1000
LABEL_COLUMNS = ("frame_index", "t", "seq", "method", "residual_ms", "root_px",
                 "root_px_error", "root_distance", "objects", "cam_position", "cam_velocity",
                 "cam_angular_velocity", "humanoid_state", "grounded", "speed",
                 "move_dir_cam", "keys", "caption")
ALIGNED_COLUMNS = ("frame_index", "pts_us", "frame_width", "frame_height")


@dataclass(frozen=True)
class _Groups:
    """Per row group of a Parquet file: the frame_index range it holds."""

    first: tuple[int, ...]
    last: tuple[int, ...]
    rows: int


@lru_cache(maxsize=64)
def _groups(path: Path, size: int, mtime_ns: int) -> _Groups:
    """Row-group frame ranges from the footer (cached per version of the file)."""
    meta = pq.ParquetFile(path).metadata
    column = meta.schema.to_arrow_schema().get_field_index("frame_index")
    first, last = [], []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        if stats is None or not stats.has_min_max:  # no statistics: the group may hold any
            first.append(-1)
            last.append(2**63 - 1)
        else:
            first.append(int(stats.min))
            last.append(int(stats.max))
    return _Groups(tuple(first), tuple(last), meta.num_rows)


def _read(path: Path, columns: tuple[str, ...], start: int, stop: int) -> pa.Table:
    """Rows with start <= frame_index < stop, in frame order, decoding only the groups that
    can hold them."""
    stat = path.stat()
    groups = _groups(path, stat.st_size, stat.st_mtime_ns)
    wanted = [g for g in range(len(groups.first))
              if groups.first[g] < stop and groups.last[g] >= start]
    file = pq.ParquetFile(path)
    present = [c for c in columns if c in file.schema_arrow.names]
    if not wanted:
        return file.schema_arrow.empty_table().select(present)
    table = file.read_row_groups(wanted, columns=present)
    index = table.column("frame_index")
    mask = pc.and_(pc.greater_equal(index, start), pc.less(index, stop))
    table = table.filter(mask)
    return table.take(pc.sort_indices(table.column("frame_index")))


def _finite(value: Any) -> Any:
    """JSON has no NaN: a NaN becomes null, in lists and records too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def frame_window(folder: Path, start: int, count: int) -> dict[str, Any]:
    """Rows for frames [start, start + count): labels with pts_us, width and height."""
    if start < 0 or not 1 <= count <= MAX_COUNT:
        raise RefusedError(400, "bad_window",
                           f"start={start}, count={count}: start must be >= 0 and count "
                           f"between 1 and {MAX_COUNT}")
    stop = start + count
    labels = _read(session_file(folder, LABELS), LABEL_COLUMNS, start, stop)
    aligned = _read(session_file(folder, ALIGNED), ALIGNED_COLUMNS, start, stop)
    timing = {row["frame_index"]: row for row in aligned.to_pylist()}
    rows = []
    for row in labels.to_pylist():
        extra = timing.get(row["frame_index"], {})
        rows.append(_finite({**row, "pts_us": extra.get("pts_us"),
                             "frame_width": extra.get("frame_width"),
                             "frame_height": extra.get("frame_height")}))
    return {"start": start, "count": count, "rows": rows}


def _bounds(path: Path, column: str) -> tuple[Any, Any]:
    """(min, max) of `column` from the footer's statistics, or from the column itself when
    a group has none."""
    meta = pq.ParquetFile(path).metadata
    field = meta.schema.to_arrow_schema().get_field_index(column)
    stats = [meta.row_group(g).column(field).statistics for g in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        return min(s.min for s in stats), max(s.max for s in stats)
    bounds = pc.min_max(pq.read_table(path, columns=[column]).column(column))
    return bounds["min"].as_py(), bounds["max"].as_py()


def frame_extent(folder: Path) -> dict[str, Any]:
    """The labelled frames: number of rows, first and last frame index and time `t`."""
    path = session_file(folder, LABELS)
    stat = path.stat()
    groups = _groups(path, stat.st_size, stat.st_mtime_ns)
    if not groups.rows:
        return {"rows": 0, "first": None, "last": None, "t_first": None, "t_last": None}
    first, last = _bounds(path, "frame_index")
    t_first, t_last = _bounds(path, "t")
    return {"rows": groups.rows, "first": first, "last": last, "t_first": t_first,
            "t_last": t_last}
