"""Compute labels.parquet (contract E in docs/labels.md) from a session's aligned table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from capture import Session
from pipeline.labels import _events as ev
from pipeline.labels._caption import captions
from pipeline.labels._geometry import (
    boxes,
    camera_labels,
    engine_pixels,
    project_points,
)
from pipeline.labels._inputs import FrameInputs, frame_inputs
from pipeline.labels._motion import (
    camera_angular_velocity,
    camera_velocity,
    horizontal_speed,
    motion_split,
    move_direction,
    yaw,
)

logger = logging.getLogger(__name__)

ASPECT_TOLERANCE = 0.01  # max(sx/sy, sy/sx) - 1 of the capture scales


def _fixed(values: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """An (n, width) float array as fixed_size_list<f64>[width]; rows not `valid` are null."""
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float64).reshape(-1))
    mask = None if valid is None else pa.array(~np.asarray(valid, bool))
    return pa.FixedSizeListArray.from_arrays(flat, width, mask=mask)


OBJECT_TYPE = pa.struct([
    ("id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
    ("box_xyxy", pa.list_(pa.float64(), 4)), ("truncation", pa.float64()),
    ("on_screen", pa.bool_()), ("behind_camera", pa.bool_()), ("distance", pa.float64()),
    ("depth", pa.float64()), ("image_motion", pa.list_(pa.float64(), 2)),
    ("camera_caused_motion", pa.list_(pa.float64(), 2)),
    ("object_caused_motion", pa.list_(pa.float64(), 2)),
])


@dataclass(frozen=True)
class Labels:
    """The labels of one session: the table, its events and a summary."""

    table: pa.Table
    events: list[dict[str, Any]]
    summary: dict[str, Any]


def _objects(inp: FrameInputs, cam: Any, has_character: np.ndarray) -> pa.Array:
    """The `objects` column: the character's box then each entity's, per frame."""
    chars = np.flatnonzero(has_character)
    ent = inp.entities
    frame = np.concatenate([chars, ent.frame]).astype(np.int64)
    ids = np.concatenate([np.full(len(chars), "character", object), ent.id])
    names = np.concatenate([np.full(len(chars), "character", object), ent.name])
    kinds = np.concatenate([np.full(len(chars), "character", object),
                            np.full(len(ent.frame), "entity", object)])
    cframe = np.concatenate([inp.bbox_cframe[chars], ent.cframe])
    size = np.concatenate([inp.bbox_size[chars], ent.size])
    order = np.lexsort((np.arange(len(frame)), frame))  # by frame, character first
    frame, ids, names, kinds = frame[order], ids[order], names[order], kinds[order]
    cframe, size = cframe[order], size[order]
    k, t_cw = cam.k[frame], cam.t_cam_world[frame]
    b = boxes(cframe, size, k, t_cw, inp.frame_size[frame])
    image, by_cam, by_obj = motion_split(frame, ids, cframe[:, :3], cam.k, cam.t_cam_world,
                                         inp.t)
    struct = pa.StructArray.from_arrays([
        pa.array(ids.tolist(), pa.string()), pa.array(names.tolist(), pa.string()),
        pa.array(kinds.tolist(), pa.string()), _fixed(b.box_xyxy, 4),
        pa.array(b.truncation), pa.array(b.on_screen), pa.array(b.behind_camera),
        pa.array(b.distance), pa.array(b.depth), _fixed(image, 2), _fixed(by_cam, 2),
        _fixed(by_obj, 2)], fields=list(OBJECT_TYPE))
    offsets = np.searchsorted(frame, np.arange(inp.n + 1)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), struct)


def _summary(inp: FrameInputs, error: np.ndarray, events: list[dict[str, Any]]) -> dict:
    scale = inp.scale[inp.has_state]
    ratio = scale[:, 0] / scale[:, 1]
    aspect = np.maximum(ratio, 1.0 / ratio) - 1.0
    measured = error[~np.isnan(error)]
    summary: dict[str, Any] = {
        "frames": inp.n, "frames_with_state": int(inp.has_state.sum()),
        "root_px_error": {"frames": len(measured),
                          "mean": float(measured.mean()) if len(measured) else None,
                          "p95": float(np.percentile(measured, 95)) if len(measured) else None,
                          "max": float(measured.max()) if len(measured) else None},
        "capture_aspect_mismatch": float(aspect.max()) if len(aspect) else 0.0,
        "events": {k: sum(e["kind"] == k for e in events)
                   for k in sorted({e["kind"] for e in events})},
    }
    if summary["capture_aspect_mismatch"] > ASPECT_TOLERANCE:
        logger.warning("capture scale differs between x and y by %.1f %%: the captured frame's "
                       "aspect ratio is not the viewport's; K keeps fx != fy instead of "
                       "squashing (check the recorder region)",
                       100 * summary["capture_aspect_mismatch"])
    return summary


def compute_labels(session: Session) -> Labels:
    """Every label of contract E for `session`, from its aligned.parquet."""
    inp = frame_inputs(session)
    cam = camera_labels(inp.cam_cframe, inp.fov_y, inp.viewport, inp.scale, inp.offset)
    has_character = inp.has_state & ~np.isnan(inp.root_cframe).any(axis=1)
    root_px, root_depth = project_points(inp.root_cframe[:, :3], cam.k, cam.t_cam_world)
    engine = engine_pixels(inp.root_projection, inp.scale, inp.offset)
    engine_valid = has_character & ~np.isnan(engine).any(axis=1) & (inp.root_projection[:, 2]
                                                                     > 0)
    error = np.where(engine_valid & ~np.isnan(root_px).any(axis=1),
                     np.linalg.norm(root_px - engine, axis=1), np.nan)
    velocity = camera_velocity(cam.position, inp.t)
    angular = camera_angular_velocity(cam.t_cam_world, inp.t)
    speed = horizontal_speed(inp.root_velocity)
    direction = move_direction(inp.root_velocity, inp.move_direction, inp.cam_cframe)
    airborne = ev.airborne_mask(inp.humanoid_state, inp.floor_material) & has_character
    grounded = has_character & ~airborne
    cam_yaw = yaw(inp.cam_cframe)
    cam_yaw_rate = np.zeros(inp.n)
    if inp.n > 1:
        cam_yaw_rate[1:] = np.diff(cam_yaw) / np.diff(inp.t)
    events = ev.sort_events(
        ev.jump_events(inp.humanoid_state, airborne)
        + ev.moving_events(np.where(has_character, speed, 0.0))
        + ev.turn_events(yaw(inp.root_cframe), inp.t, "character")
        + ev.turn_events(cam_yaw, inp.t, "camera")
        + ev.key_events(inp.keys))
    records = [e.record(inp.frame_index, inp.t) for e in events]
    text = captions(inp.frame_index, inp.has_state, inp.keys, direction, speed, airborne,
                    np.nan_to_num(cam_yaw_rate), has_character)
    s = inp.has_state
    table = pa.table({
        "frame_index": pa.array(inp.frame_index, pa.int64()),
        "t": pa.array(inp.t), "seq": inp.seq, "residual_ms": inp.residual_ms,
        "method": inp.method,
        "K": _fixed(cam.k.reshape(-1, 9), 9, s),
        "T_cam_world": _fixed(cam.t_cam_world.reshape(-1, 16), 16, s),
        "cam_position": _fixed(cam.position, 3, s),
        "cam_quat_xyzw": _fixed(cam.quat_xyzw, 4, s),
        "root_px": _fixed(root_px, 2, has_character & ~np.isnan(root_px).any(axis=1)),
        "root_px_engine": _fixed(engine, 2, engine_valid),
        "root_px_error": pa.array(error, from_pandas=True),
        "root_depth": pa.array(np.where(has_character, root_depth, np.nan), from_pandas=True),
        "root_distance": pa.array(np.where(has_character, np.linalg.norm(
            inp.root_cframe[:, :3] - cam.position, axis=1), np.nan), from_pandas=True),
        "objects": _objects(inp, cam, has_character),
        "cam_velocity": _fixed(velocity, 3, s & ~np.isnan(velocity).any(axis=1)),
        "cam_angular_velocity": _fixed(angular, 3, s & ~np.isnan(angular).any(axis=1)),
        "humanoid_state": pa.array(np.where(has_character, inp.humanoid_state, None).tolist(),
                                   pa.string()),
        "grounded": pa.array(grounded),
        "speed": pa.array(np.where(has_character, speed, np.nan), from_pandas=True),
        "move_dir_cam": pa.array(direction.tolist(), pa.string()),
        "keys": pa.array(inp.keys, pa.list_(pa.string())),
        "caption": pa.array(text, pa.string()),
    })
    return Labels(table=table, events=records, summary=_summary(inp, error, records))
