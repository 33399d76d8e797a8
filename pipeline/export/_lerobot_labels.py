"""The label features of the LeRobot export: camera intrinsics and pose, the root's pixel,
a bounded set of entity boxes, the per-frame caption and the state caption used as the task
(LeRobot's language field), all taken from labels.parquet at each row's source frame."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.export._lerobot_meta import Feature

MAX_BOXES = 8
NO_CHARACTER = "No character is present."
COLUMNS = ("K", "T_cam_world", "root_px", "objects", "caption", "move_dir_cam", "speed",
           "grounded")  # the labels.parquet columns `label_columns` reads


def state_caption(row: dict[str, Any]) -> str:
    """A short sentence of what the character is doing, without numbers, so a session has
    a handful of distinct tasks: "The character runs forward-left." """
    direction, speed = row["move_dir_cam"], row["speed"]
    if speed is None or (isinstance(speed, float) and np.isnan(speed)):
        return NO_CHARACTER
    airborne = not row["grounded"]
    if direction in (None, "none"):
        return "The character is in the air." if airborne else "The character stands still."
    verb = "moves" if airborne else ("walks" if speed < 8.0 else "runs")
    return f"The character {verb} {direction}."


def _array(column: pa.ChunkedArray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) values of a list column, 0 where missing, and whether each row has one
    (without Python objects per row). Missing values are not NaN: LeRobot's merge turns NaN
    inside a list into null, which it cannot load."""
    column = column.combine_chunks()
    filled = pc.fill_null(column, pa.scalar([np.nan] * width, type=column.type))
    out = pc.list_flatten(filled).to_numpy(zero_copy_only=False).astype(np.float64)
    out = out.reshape(len(column), width)
    valid = column.is_valid().to_numpy(zero_copy_only=False) & ~np.isnan(out).any(axis=1)
    out[~valid] = 0.0
    return out, valid


def _boxes(objects: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per row of `objects`: the boxes of its first MAX_BOXES on-screen entries with a
    finite box ((n, MAX_BOXES, 4), 0 padded), their count and their ids (a JSON list),
    computed on the flattened entries; only the ids kept become Python objects. An entry
    without a usable box is left out rather than written as NaN, which LeRobot cannot load
    (see `_array`) and which would make the statistics invalid JSON."""
    objects = objects.combine_chunks()
    n = len(objects)
    lengths = pc.fill_null(pc.list_value_length(objects), 0).to_numpy(zero_copy_only=False)
    parent = np.repeat(np.arange(n), lengths)  # row of each flattened entry
    flat = pc.list_flatten(objects)
    shown = pc.fill_null(pc.struct_field(flat, "on_screen"), False)
    box = pc.struct_field(flat, "box_xyxy")
    box = pc.fill_null(box, pa.scalar([np.nan] * 4, type=box.type))
    box = pc.list_flatten(box).to_numpy(zero_copy_only=False).reshape(-1, 4)
    usable = shown.to_numpy(zero_copy_only=False) & np.isfinite(box).all(axis=1)
    index = np.flatnonzero(usable)
    parent = parent[index]
    rank = np.arange(len(index)) - np.searchsorted(parent, parent)  # among the row's shown
    keep = rank < MAX_BOXES
    index, parent, rank = index[keep], parent[keep], rank[keep]
    boxes = np.zeros((n, MAX_BOXES, 4), np.float32)
    boxes[parent, rank] = box[index]
    count = np.bincount(parent, minlength=n).astype(np.int64)
    names = pc.struct_field(flat, "id").take(pa.array(index)).to_pylist()
    ends = np.cumsum(count)
    ids = [json.dumps(names[end - c:end]) for c, end in zip(count.tolist(), ends.tolist(),
                                                             strict=True)]
    return boxes, count, ids


def label_columns(labels: pa.Table, rows: np.ndarray
                  ) -> dict[str, np.ndarray | list[str] | pa.Array]:
    """Per output row (source rows `rows` of `labels`): K (9), T_cam_world (16), root_px (2,
    0 and root_visible false when no character), boxes (MAX_BOXES x 4 xyxy px, flat, 0
    padded) with their count and entity ids (a JSON list), the caption and the state
    caption. Built with arrow compute and numpy: the entities never become Python objects
    (40 of them take ~55 KB per frame as dicts)."""
    taken = labels.select(list(COLUMNS)).take(pa.array(rows))
    boxes, count, ids = _boxes(taken["objects"])
    tasks = [state_caption(r) for r in
             taken.select(["move_dir_cam", "speed", "grounded"]).to_pylist()]
    root_px, root_visible = _array(taken["root_px"], 2)
    return {
        "observation.K": _array(taken["K"], 9)[0],
        "observation.T_cam_world": _array(taken["T_cam_world"], 16)[0],
        "observation.root_px": root_px, "observation.root_visible": root_visible,
        "observation.boxes": boxes.reshape(len(rows), MAX_BOXES * 4),
        "observation.box_count": count,
        "observation.box_ids": ids,
        "caption": pc.fill_null(taken["caption"], "").combine_chunks(),
        "task": tasks,
    }


def label_features() -> dict[str, Feature]:
    """info.json entries of the columns `label_columns` returns (the task is task_index)."""
    return {
        "observation.K": Feature(dtype="float64", shape=[9], names=None),
        "observation.T_cam_world": Feature(dtype="float64", shape=[16], names=None),
        "observation.root_px": Feature(dtype="float64", shape=[2], names=["u", "v"]),
        "observation.root_visible": Feature(dtype="bool", shape=[1], names=None),
        "observation.boxes": Feature(dtype="float32", shape=[MAX_BOXES * 4], names=[
            f"box{i}.{c}" for i in range(MAX_BOXES) for c in ("x0", "y0", "x1", "y1")]),
        "observation.box_count": Feature(dtype="int64", shape=[1], names=None),
        "observation.box_ids": Feature(dtype="string", shape=[1], names=None),
        "caption": Feature(dtype="string", shape=[1], names=None),
    }
