"""The aligned table (contract D) as numpy arrays: what the label stages compute from.

Unmatched frames carry null state; here they become NaN rows (vectors), "" (strings) and
empty lists, with `has_state` False, so every stage stays vectorised over frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alignment import AlignmentError, read_aligned
from capture import Session
from capture._layout import ALIGNED
from pipeline._errors import PipelineError

logger = logging.getLogger(__name__)

REQUIRED = ("frame_index", "t", "seq", "residual_ms", "method", "frame_width", "frame_height",
            "capture_scale", "capture_offset", "camera.cframe", "camera.fov_y",
            "camera.viewport")


def read_aligned_table(session: Session) -> pa.Table:
    """`<session>/aligned.parquet`, checked for the columns the labels need."""
    path = session.path / ALIGNED
    try:
        table = read_aligned(session)
    except AlignmentError as exc:
        raise PipelineError(str(exc)) from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise PipelineError(f"{path} lacks columns {missing} (expected the aligned-table "
                            f"contract); re-create it with `stpe align {session.path}`")
    if table.num_rows == 0:
        raise PipelineError(f"{path} has no frames: nothing to label; check that the session "
                            "recorded video and re-run `stpe align`")
    return table


def iter_parquet(file: pq.ParquetFile, columns: Sequence[str] | None,
                 batch: int) -> Iterator[pa.RecordBatch]:
    """The rows of `file` in order, `batch` at a time, one row group after the other:
    iterating the whole file at once lets pyarrow read row groups ahead, and its memory
    then grows with the file. Columns are decoded on this thread and the memory pool gives
    its free pages back after each group: decoding on pyarrow's thread pool left freed
    pages in each thread's allocator heap, so the process's resident memory grew with the
    number of groups read (+40 MB over 7000 rows of a 40-entity labels file) while arrow
    itself held one group."""
    pool = pa.default_memory_pool()
    for group in range(file.num_row_groups):
        yield from file.iter_batches(batch_size=batch, row_groups=[group], use_threads=False,
                                     columns=list(columns) if columns else None)
        pool.release_unused()


def iter_aligned(session: Session, columns: Sequence[str],
                 batch: int = 1024) -> Iterator[pa.Table]:
    """`<session>/aligned.parquet` in order, `batch` rows at a time, only those of `columns`
    the file has (the readers here treat a missing column as null), checked as
    `read_aligned_table` checks it; memory holds one batch, not the session."""
    path = session.path / ALIGNED
    if not path.is_file():
        raise PipelineError(f"{session.path} has no {ALIGNED}; run `stpe align "
                            f"{session.path}` first")
    try:
        with pq.ParquetFile(path) as file:
            names = file.schema_arrow.names
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise PipelineError(f"{path} lacks columns {missing} (expected the "
                                    f"aligned-table contract); re-create it with "
                                    f"`stpe align {session.path}`")
            if file.metadata.num_rows == 0:
                raise PipelineError(f"{path} has no frames: nothing to label; check that the "
                                    "session recorded video and re-run `stpe align`")
            for part in iter_parquet(file, [c for c in columns if c in names], batch):
                yield pa.Table.from_batches([part])
    except (pa.ArrowException, OSError) as exc:
        raise PipelineError(f"{path} is not a readable parquet file ({exc}); re-create it "
                            f"with `stpe align {session.path}`") from None


def vectors(table: pa.Table, name: str, width: int) -> np.ndarray:
    """A list column as an (n, width) float array; null rows (or a missing column) are NaN."""
    out = np.full((table.num_rows, width), np.nan)
    if name not in table.column_names or table.num_rows == 0:
        return out
    column = table.column(name).combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return out
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if np.any(lengths[valid] != width):
        raise PipelineError(f"column {name!r} must hold {width} numbers per row; re-create "
                            "aligned.parquet with `stpe align`")
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float64)
    out[valid] = flat.reshape(-1, width)
    return out


def scalars(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (NaN when the column is missing)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    column = table.column(name).combine_chunks().cast(pa.float64())
    return column.fill_null(np.nan).to_numpy(zero_copy_only=False)


def strings(table: pa.Table, name: str) -> np.ndarray:
    """A string column as an object array with "" for nulls."""
    if name not in table.column_names:
        return np.full(table.num_rows, "", dtype=object)
    column = table.column(name).combine_chunks().cast(pa.string()).fill_null("")
    return np.asarray(column.to_pylist(), dtype=object)


def string_lists(table: pa.Table, name: str) -> list[list[str]]:
    """A list<string> column as Python lists (null -> [])."""
    if name not in table.column_names:
        return [[] for _ in range(table.num_rows)]
    return [v or [] for v in table.column(name).to_pylist()]


@dataclass(frozen=True)
class Entities:
    """Every (frame, entity) pair flattened: row i belongs to frame `frame[i]`."""

    frame: np.ndarray  # (m,) int
    id: np.ndarray  # (m,) object
    name: np.ndarray
    cframe: np.ndarray  # (m, 12)
    size: np.ndarray  # (m, 3)


def entities(table: pa.Table) -> Entities:
    """The `entities` column flattened to one row per (frame, entity)."""
    if "entities" not in table.column_names or table.num_rows == 0:
        empty = np.zeros(0, dtype=object)
        return Entities(np.zeros(0, int), empty, empty, np.zeros((0, 12)), np.zeros((0, 3)))
    column = table.column("entities").combine_chunks()
    frame = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64)
    items = pc.list_flatten(column)
    sub = pa.Table.from_arrays([items.field(n) for n in ("id", "name", "cframe", "size")],
                               names=["id", "name", "cframe", "size"])
    return Entities(frame=frame, id=strings(sub, "id"), name=strings(sub, "name"),
                    cframe=vectors(sub, "cframe", 12), size=vectors(sub, "size", 3))


@dataclass(frozen=True)
class FrameInputs:
    """Per-frame arrays read from aligned.parquet (n frames)."""

    frame_index: np.ndarray
    t: np.ndarray
    seq: pa.Array
    residual_ms: pa.Array
    method: pa.Array
    has_state: np.ndarray  # bool: the camera state is present
    frame_size: np.ndarray  # (n, 2) width, height in captured px
    scale: np.ndarray  # (n, 2)
    offset: np.ndarray  # (n, 2)
    cam_cframe: np.ndarray  # (n, 12)
    fov_y: np.ndarray
    viewport: np.ndarray  # (n, 2)
    root_projection: np.ndarray  # (n, 4) u, v (viewport px), depth, on_screen
    root_cframe: np.ndarray
    root_velocity: np.ndarray
    bbox_cframe: np.ndarray
    bbox_size: np.ndarray
    move_direction: np.ndarray
    humanoid_state: np.ndarray
    floor_material: np.ndarray
    keys: list[list[str]]
    entities: Entities

    @property
    def n(self) -> int:
        return len(self.t)


def frame_inputs(session: Session) -> FrameInputs:
    """Read and unpack a session's aligned table."""
    table = read_aligned_table(session)
    t = scalars(table, "t")
    if np.any(np.diff(t) <= 0):
        raise PipelineError(f"{session.path / ALIGNED}: frame times `t` must strictly increase; "
                            "re-create it with `stpe align`")
    cam = vectors(table, "camera.cframe", 12)
    return FrameInputs(
        frame_index=table.column("frame_index").to_numpy().astype(np.int64),
        t=t,
        seq=table.column("seq").combine_chunks(),
        residual_ms=table.column("residual_ms").combine_chunks(),
        method=table.column("method").combine_chunks(),
        has_state=~np.isnan(cam).any(axis=1),
        frame_size=np.stack([scalars(table, "frame_width"), scalars(table, "frame_height")], 1),
        scale=vectors(table, "capture_scale", 2),
        offset=vectors(table, "capture_offset", 2),
        cam_cframe=cam,
        fov_y=scalars(table, "camera.fov_y"),
        viewport=vectors(table, "camera.viewport", 2),
        root_projection=vectors(table, "camera.root_projection", 4),
        root_cframe=vectors(table, "character.root.cframe", 12),
        root_velocity=vectors(table, "character.root.velocity", 3),
        bbox_cframe=vectors(table, "character.bbox.cframe", 12),
        bbox_size=vectors(table, "character.bbox.size", 3),
        move_direction=vectors(table, "character.humanoid.move_direction", 3),
        humanoid_state=strings(table, "character.humanoid.state"),
        floor_material=strings(table, "character.humanoid.floor_material"),
        keys=string_lists(table, "inputs.keys"),
        entities=entities(table),
    )
