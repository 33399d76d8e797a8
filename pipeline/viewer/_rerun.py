"""`stpe view`: a session in Rerun, the video on a posed pinhole camera in the 3D world.

World: Roblox's (studs, right-handed, +Y up). The camera entity carries `world_from_camera`
(the inverse of the labels' `T_cam_world`) and a Pinhole whose camera frame is OpenCV's
(`camera_xyz=RDF`: x right, y down, z forward), so images, 2D boxes and 3D boxes line up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from capture import Session
from pipeline import camera as cam
from pipeline._errors import MissingExtraError, PipelineError

logger = logging.getLogger(__name__)

JPEG_QUALITY = 80


@dataclass(frozen=True)
class ViewResult:
    frames: int
    images: int
    events: int
    saved_to: Path | None


def _import_rerun() -> Any:
    try:
        import rerun
    except ImportError:
        raise MissingExtraError("rerun-sdk", "view") from None
    return rerun


def _rows(table: pa.Table) -> dict[int, dict[str, Any]]:
    return {row["frame_index"]: row for row in table.to_pylist()}


def _boxes(rr: Any, cframes: list, sizes: list, labels: list[str]) -> Any:
    cframes, sizes = np.array(cframes, float), np.array(sizes, float)
    quats = cam.quat_xyzw(cam.cframe_rotation(cframes))
    return rr.Boxes3D(centers=cframes[:, :3], half_sizes=sizes / 2,
                      quaternions=[rr.Quaternion(xyzw=q) for q in quats], labels=labels)


def _log_camera(rr: Any, rec: Any, label: dict[str, Any]) -> None:
    t_cam_world = np.array(label["T_cam_world"], float).reshape(4, 4)
    r_world_cam = t_cam_world[:3, :3].T
    rec.log("world/camera", rr.Transform3D(translation=-r_world_cam @ t_cam_world[:3, 3],
                                           mat3x3=r_world_cam))
    size = (label.get("frame_width"), label.get("frame_height"))
    rec.log("world/camera", rr.Pinhole(image_from_camera=np.array(label["K"]).reshape(3, 3),
                                       resolution=size if None not in size else None,
                                       camera_xyz=rr.ViewCoordinates.RDF))


def _log_frame(rr: Any, rec: Any, label: dict[str, Any], state: dict[str, Any] | None) -> None:
    if label.get("T_cam_world") is not None and label.get("K") is not None:
        _log_camera(rr, rec, label)  # an unmatched frame has no camera: the last pose holds
    shown = [o for o in label.get("objects") or [] if o["on_screen"]]
    if shown:
        rec.log("world/camera/image/boxes", rr.Boxes2D(
            array=[o["box_xyxy"] for o in shown], array_format=rr.Box2DFormat.XYXY,
            labels=[o["name"] for o in shown]))
    if label.get("speed") is not None:
        rec.log("plots/speed", rr.Scalars(label["speed"]))
    if state is None:
        return
    if state.get("character.bbox.cframe") is not None:
        rec.log("world/character", _boxes(rr, [state["character.bbox.cframe"]],
                                          [state["character.bbox.size"]], ["character"]))
        rec.log("plots/height", rr.Scalars(state["character.root.cframe"][1]))
    entities = state.get("entities") or []
    if entities:
        rec.log("world/entities", _boxes(rr, [e["cframe"] for e in entities],
                                         [e["size"] for e in entities],
                                         [e["name"] for e in entities]))


def save_recording(session_path: Path | str, out: Path | str, *,
                   progress: Callable[[int, int], None] | None = None) -> ViewResult:
    """Log a labelled session to Rerun into the .rrd file `out`.

    The file is written beside `out` under a hidden name and renamed when complete, so an
    error or Ctrl-C never leaves a half-written recording at `out`."""
    rr = _import_rerun()
    from alignment import read_aligned
    from pipeline.labels import read_label_events, read_labels

    session = Session.open(session_path)
    labels = _rows(read_labels(session))
    states = _rows(read_aligned(session))
    events = read_label_events(session)
    if not labels:
        raise PipelineError(f"{session.path} has no labelled frames; re-run `stpe labels`")
    target = Path(out)
    partial = target.with_name(f".{target.name}.partial")
    try:
        rec = rr.RecordingStream("stpe", recording_id=session.manifest.session_id)
        rec.save(str(partial))
        images = _log_session(rr, rec, session, labels, states, events, progress)
        rec.disconnect()  # writes the file's footer
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return ViewResult(len(labels), images, len(events), target)


def _log_session(rr: Any, rec: Any, session: Session, labels: dict[int, dict[str, Any]],
                 states: dict[int, dict[str, Any]], events: list[dict[str, Any]],
                 progress: Callable[[int, int], None] | None) -> int:
    """Everything of one session into `rec`; returns the number of images logged."""
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Y_UP, static=True)
    trajectory = [s["character.root.cframe"][:3] for _, s in sorted(states.items())
                  if s.get("character.root.cframe") is not None]
    if trajectory:
        rec.log("world/trajectory", rr.LineStrips3D([trajectory]), static=True)
    for index, label in sorted(labels.items()):
        rec.set_time("frame", sequence=index)
        rec.set_time("t", duration=label["t"])
        _log_frame(rr, rec, label, states.get(index))
    images = 0
    if session.file("video").is_file():
        for frame in session.iter_frames():
            if frame.index not in labels:
                continue
            rec.set_time("frame", sequence=frame.index)
            rec.set_time("t", duration=labels[frame.index]["t"])
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                rec.log("world/camera/image", rr.EncodedImage(contents=jpeg.tobytes(),
                                                              media_type="image/jpeg"))
                images += 1
            if progress is not None:
                progress(images, len(labels))
    for event in events:
        rec.set_time("frame", sequence=event["start_frame"])
        rec.set_time("t", duration=event["start_t"])
        rec.log("events", rr.TextLog(f"{event['kind']} frames {event['start_frame']}-"
                                     f"{event['end_frame']}", level="INFO"))
    return images
